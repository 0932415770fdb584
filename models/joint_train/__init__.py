"""``joint_train``: PSI, then SecureBoost (HEU), secret-shared LR (SPU) and the
label owner's bank-only baseline, evaluated at the label owner.

``description`` is what every role reads; ``params`` the typed parameters;
``program`` the stage functions a worker runs; ``evaluate`` what the label
owner computes from its labels.
"""
