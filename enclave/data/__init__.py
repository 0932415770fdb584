"""Data inside one party's domain: USCC codes, dataset schemas and the validating
loader, importing and splitting tables, and the synthetic city with its catalogue."""
