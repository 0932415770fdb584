"""Controls commands: audit trails and firm authorisations."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from parties.cli import common


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from enclave.controls import audit

    home = common.home(args)
    trails = audit.trails(home)
    if not trails:
        print(f"safehouse: error: no audit trails under {home.root}", file=sys.stderr)
        return 2
    problems = audit.verify_home(home)
    for p in problems:
        print(f"TAMPERED {p}")
    entries = sum(len(audit.read_entries(t)) for t in trails)
    if problems:
        print(f"audit: {len(problems)} problem(s) in {len(trails)} trail(s)", file=sys.stderr)
        return 1
    print(f"audit: {entries} entries in {len(trails)} trails verified (chains, signatures, cross-references)")
    return 0


def cmd_audit_show(args: argparse.Namespace) -> int:
    from enclave.controls import audit

    entries = audit.story(common.home(args), args.job)
    if not entries:
        print(f"safehouse: error: no audit entries for job {args.job!r}", file=sys.stderr)
        return 2
    for e in entries:
        print(audit.describe(e))
    return 0


def cmd_consent(args: argparse.Namespace) -> int:
    from enclave.controls import consent

    home = common.home(args)
    root = home.party(args.party).root
    signer = consent.consent_signer(home.key_dir(consent.SIGNER), home.trust_dir)
    if args.consent_command == "grant":
        granted = consent.grant(root, signer, args.uscc, args.grantee, args.purpose, args.days)
        for a in granted:
            print(f"authorisation {a.id}: {a.uscc} -> {a.grantee} for {a.purpose} until {a.expires}")
    else:
        r = consent.revoke(root, signer, args.id)
        print(f"authorisation {r.id} revoked at {r.revoked}; applies from the next job")
    return 0


def cmd_pki(args: argparse.Namespace) -> int:
    from enclave.controls import pki

    home = common.home(args)
    if args.pki_command == "init":
        path = pki.init_ca(home.pki_dir, force=args.force)
        print(f"federation CA: {path} (its key {home.pki_dir / pki.CA_KEY} stays with the federation operator)")
        return 0
    out = Path(args.out) if args.out else home.tls_dir(args.name)
    files = pki.issue(home.pki_dir, args.name, out, args.host)
    print(f"certificate for {args.name!r}: {files.cert}, key {files.key} (mode 0600), CA {files.ca}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pk = sub.add_parser("pki", help="the federation's certificates").add_subparsers(dest="pki_command", required=True)
    pi = common.with_home(pk.add_parser("init", help="create the federation CA"))
    pi.add_argument("--force", action="store_true", help="replace an existing CA (every certificate must be reissued)")
    pi.set_defaults(fn=cmd_pki)
    ps = common.with_home(pk.add_parser("issue", help="issue a certificate to a party or the coordinator"))
    ps.add_argument("name", help="a party name, or 'coordinator'")
    ps.add_argument("--host", action="append", default=[], help="a DNS name or IP the holder is reached at (repeat)")
    ps.add_argument("--out", help="where to write cert.pem, key.pem and ca.pem (default: the holder's tls/ dir)")
    ps.set_defaults(fn=cmd_pki)

    au = sub.add_parser("audit", help="audit trails").add_subparsers(dest="audit_command", required=True)
    v = common.with_home(au.add_parser("verify", help="verify every trail's chain, signatures and cross-references"))
    v.set_defaults(fn=cmd_audit_verify)
    sh = common.with_home(au.add_parser("show", help="the whole story of one job across all trails"))
    sh.add_argument("--job", required=True)
    sh.set_defaults(fn=cmd_audit_show)

    co = sub.add_parser("consent", help="firm authorisations").add_subparsers(dest="consent_command", required=True)
    gr = common.with_home(co.add_parser("grant", help="record signed authorisations"))
    gr.add_argument("--party", default="platform", help="data owner holding the consent book")
    gr.add_argument("--grantee", required=True, help="the bank authorised")
    gr.add_argument("--purpose", default="credit_risk_model")
    gr.add_argument("--days", type=int, default=365)
    gr.add_argument("uscc", nargs="+")
    gr.set_defaults(fn=cmd_consent)
    rv = common.with_home(co.add_parser("revoke", help="revoke an authorisation by id"))
    rv.add_argument("--party", default="platform")
    rv.add_argument("id")
    rv.set_defaults(fn=cmd_consent)
