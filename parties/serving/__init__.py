"""Online scoring (``safehouse serve``): a party's model parts kept loaded in a long-lived process.

* ``contributor`` answers a model's label owner, over mutual TLS, with this
  party's piece of one firm's score, after checking the caller's identity,
  the part's registered hash, the party's policy and the firm's authorisation.
* ``scorer`` is the label owner's side: its own part, the other parties'
  pieces, and the score, band and reasons of one firm.
* ``http`` the label owner's ``POST /score`` endpoint (HTTPS, client
  certificates of its own party only); ``client`` calls it.
* ``live`` tables, policies and consent books re-read when their files change;
  ``tally`` per-minute audit entries with counts, never firm codes.
* ``server`` puts them together and runs until SIGTERM.
"""
