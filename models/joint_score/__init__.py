"""``joint_score``: a trained joint model applied to a table of firms, and the same job
watching a loan book (``monitor``): PSI, each party's own model part, scores and reasons
at the label owner, adverse-record flags from the platform.

``description`` is what every role reads; ``params`` the typed parameters;
``program`` the stage functions a worker runs; ``assemble`` what the label owner
computes from the parts it receives.
"""
