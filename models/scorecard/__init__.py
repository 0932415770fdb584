"""Scorecards across parties: bins, WOE and IV without revealing labels or counts to a partner,
logistic regression on WOE in the SPU, and points each party keeps for its own features.

Modules: ``bins`` each party's split points and the label owner's WOE groups;
``counts`` per-bin (positives, rows) of a partner's features under the label
owner's HE key (SecureBoost's HE modules); ``lr`` the regression in the SPU;
``points`` the scaling and the encrypted point tables; ``protocol`` the calls
every party's process makes.

What each party learns in training (honest-but-curious, every link encrypted):

* **A partner** (the platform) learns the label owner's public key, the number
  of training rows, the number of features selected in all (the SPU's shapes)
  and its own split points. It receives its labels only as ciphertexts, its
  point table only encrypted under the label owner's key, and nothing else:
  no label, no per-bin count, no WOE, no coefficient, no score.
* **The label owner** learns, per partner feature and by bin index, the rows
  and positives of each fine bin (as with SecretFlow's and FATE's vertical
  WOE binning); the feature names and reporting categories the partner
  announces; hence every feature's WOE and IV; the coefficients; and, per
  held-out firm, the sum of each partner's points per reporting category (the
  sums arrive re-randomised, so not which bins made them). It never learns a
  partner's split points or any row's bin.
"""
