"""The Safehouse wire contract, shared by every role; it imports nothing of ours.

``control.proto`` defines the control-plane messages (``control_pb2`` is
generated from it by ``scripts/gen-protos.sh``); ``messages`` holds the typed
frozen dataclasses used inside the code; ``serde`` is the one place that
converts between the two; ``errors`` the error codes and exception classes;
``constants`` the job states, shared stages and worker file names.
"""
