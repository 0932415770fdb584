"""Controls commands: audit trails and firm authorisations."""

from __future__ import annotations

import argparse
import sys

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
    signer = consent.consent_signer(root, home.trust_dir)
    if args.consent_command == "grant":
        granted = consent.grant(root, signer, args.uscc, args.grantee, args.purpose, args.days)
        for a in granted:
            print(f"authorisation {a.id}: {a.uscc} -> {a.grantee} for {a.purpose} until {a.expires}")
    else:
        r = consent.revoke(root, signer, args.id)
        print(f"authorisation {r.id} revoked at {r.revoked}; applies from the next job")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
