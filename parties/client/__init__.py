"""What a person touches: the Python API (``api``), workflows before a job
(``workflows``: a synthetic city, splitting a table, building specs and
grants), the local launcher (``local``) and the demo (``demo``)."""
