"""``joint_binning``: vertical WOE/IV binning across parties, without a model.

PSI aligns the parties; every party bins its own features (equal frequency or
ChiMerge, a bin for missing values, optionally monotone WOE); a partner's
per-bin counts of defaults and rows reach the label owner only as sums under
the label owner's HE key; the label owner computes WOE and IV of every feature
and selects by IV. The IV table (per feature and per catalogue category) and
its plot are released; each partner keeps its own bin edges.

``description`` is what every role reads; ``params`` the typed parameters;
``program`` the stage functions a worker runs.
"""
