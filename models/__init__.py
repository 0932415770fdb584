"""Joint credit models: what a party's worker computes, and how it is scored.

``prep`` aligns and prepares each party's own columns inside its domain,
``metrics`` scores predictions (AUC, KS) and draws ROC/KS plots, ``trees``
holds the plaintext LightGBM twin of SecureBoost's settings, and
``joint_train`` is the SecretFlow program every party runs for one job.
"""
