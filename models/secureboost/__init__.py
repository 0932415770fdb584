"""SecureBoost: vertical gradient boosting on HEU, with one label owner and one or more passive parties.

The same model as SecretFlow's ``sgb_v`` (same binning, gain, leaf weights and
split rules, logistic loss, base score 0, fixed point at 2**-20, the first tree
on the label owner's features only), lossless: every sum is an exact integer,
so its scores equal a plaintext reimplementation on the same bins. It is faster
because the label owner decrypts in one batch per reply on all cores, passive
parties send sums of the smaller child only (the label owner derives the
sibling in plaintext), only non-empty buckets travel, sums go through joint
cells of feature groups, several bucket sums are packed per ciphertext under a
proven overflow bound, every level takes one round trip (two with several
passive parties), and the label owner's key pair is raced in helper processes
of its own, the winner of which then makes encryptions of zero at idle
priority: a row whose encryption of zero is ready costs one plaintext addition
instead of a whole encryption.

Modules:

* ``binning`` sgb_v's quantile bins; ``packing`` fixed point, slot layout and
  its overflow bound; ``histogram`` integer bucket sums; ``grouping`` feature
  groups' joint cells; ``split`` gain, best split and leaf weight; ``boost``
  settings from ``SgbParams`` and the logistic gradients (pure maths, no I/O).
* ``he`` the only module using HEU (``heu.phe``, ``heu.numpy``), with the
  helper script it starts, ``he_helper``: OU (or HEU's ZPaillier when ``he``
  is ``paillier``) keys, encryption (with encryptions of zero made ahead),
  select sums, Horner packing, range-checked decryption.
* ``wire`` the plain shapes of messages (dicts, lists, str, int, bytes, numeric
  arrays: what workers' allow-listed unpickling admits); ``active`` the label
  owner's and ``passive`` a passive party's state machines; ``schedule`` the
  order of calls and messages, transport-free; ``protocol`` ``train`` and
  ``predict`` over SecretFlow production-mode PYUs.
* ``model`` each party's part (``ActivePart``, ``PassivePart``), prediction
  routing, Saabas contributions, ``save_part``/``load_part`` (one versioned
  JSON file; older engines' parts are refused with ``RETRAIN_MESSAGE``).

What each party learns in training (honest-but-curious, every link encrypted):

* **A passive party** learns the label owner's public key, the row count and
  the packing layout; per tree after the first, every row's (g, h) as OU
  ciphertexts under the label owner's key (semantically secure); the node,
  feature and bucket of each of its own winning splits, hence its own
  partitions; and the row membership of every child node that can still split
  (depth below ``max_depth``), whoever split its parent: the label owner's
  splits and, with several passive parties, the other passive parties' splits,
  as in SecretFlow's ``sgb_v``. So it knows which of those nodes are split, and
  whether it split them, not who else did (with one passive party, any other
  split is the label owner's). It learns no labels, plaintext gradients,
  scores, gains or leaf values, nothing of other parties' features, thresholds
  or categories, and nothing of the last level's splits it does not own.
* **The label owner** learns, per passive party and per node whose sums it
  receives (the root and the smaller child of each split), the sums (G, H) of
  the node's rows per bucket of each of that party's features and which buckets
  are empty (and so, by subtraction, the larger sibling's); each passive
  party's number of features and buckets per feature; for each passive split
  it chose, the feature and bucket *indices*, the resulting partition and the
  feature's reporting category (``categories``), never the feature's name or
  threshold; and the whole tree structure, every gain, leaf weight and score.
* **In prediction**, each passive party sends the label owner one bit per row
  per own split node (left or right), for every row, including nodes the row
  never reaches, and, if it passes ``categories``, each own split node's
  reporting category (as in training); passive parties receive nothing.
  ``absent_prediction`` scores rows no passive party holds at the label owner
  alone (their passive splits go left, as a missing value does).

Passive parties never talk to each other; the label owner relays memberships.
The label owner's helper processes hold its key pair; they are its own, on its
host, and send nothing but to it.
"""

from models.secureboost.model import (
    RETRAIN_MESSAGE,
    ActivePart,
    PassivePart,
    Prediction,
    RowWalker,
    absent_prediction,
    load_part,
    save_part,
)
from models.secureboost.protocol import predict, train

__all__ = ["RETRAIN_MESSAGE", "ActivePart", "PassivePart", "Prediction", "RowWalker", "absent_prediction", "load_part",
           "predict", "save_part", "train"]  # fmt: skip
