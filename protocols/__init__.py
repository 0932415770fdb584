"""The Safehouse wire contract: control-plane messages shared by every role.

``control.proto`` defines the messages; ``messages`` holds the typed frozen
dataclasses used inside the code; ``serde`` is the one place that converts
between the two. ``constants`` names job states and stages for all sides.
"""
