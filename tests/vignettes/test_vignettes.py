"""Clinical vignettes: every fixture patient is run through the Flask app with its prefetch, and with
prefetch removed and the data fetched from a real local FHIR server (plus paging, partial prefetch,
token and no-_include variants) - and the cards are checked against tests/vignettes/expected.yaml.

Three scores are printed at the end (`python -m pytest tests/vignettes -q -s`): state checks,
setting/option/notice checks and order-finding checks, as percentages over all vignettes and modes.
A vignette test fails on any failed check of its own; the expectations are never weakened to pass.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fhir_server import FhirTestServer, resources_from_prefetch
from tests.shared_paths import CONTRACT, REFERENCE, SYNTHEA

ROOT = Path(__file__).resolve().parent.parent.parent
FIXTURES = ROOT / "fixtures" / "patients"
EXPECTED_FILE = Path(__file__).resolve().parent / "expected.yaml"
DOC = yaml.safe_load(EXPECTED_FILE.read_text())
AS_OF: str = DOC["as_of"]
VIGNETTES: dict[str, dict[str, Any]] = DOC["vignettes"]
VARIANTS: dict[str, dict[str, Any]] = DOC.get("config_variants") or {}
PREFETCH_KEYS = ("patient", "conditions", "observations", "diagnosticReports", "procedures",
                 "medicationStatements", "medicationRequests", "medicationAdministrations")
SERVICE_FOR_HOOK = {"patient-view": "mm-next-line", "order-select": "mm-order-check", "order-sign": "mm-order-sign"}

# category -> mode -> [passed, total]
SCORE: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
TIMINGS_MS: dict[str, list[float]] = defaultdict(list)  # mode -> service response times
CATEGORIES = ("state", "setting/options/notices", "order findings")
# prefetch and fetch are how EHRs call the service; the extra modes probe paging, partial prefetch, tokens
MODES = ("prefetch", "fetch", "fetch-paged", "partial-prefetch", "fetch-token", "fetch-no-include")
TOKEN = "vignette-access-token-0001"
REPORT_MODES = (*MODES, "config-variants")
STEROIDS = {"dexamethasone", "prednisone"}
PAGE_SIZE = 7
PARTIAL_KEEP = ("patient", "conditions", "observations")


def load_request(name: str) -> dict[str, Any]:
    entry = VIGNETTES.get(name) or VARIANTS[name]
    return json.loads((FIXTURES / entry["file"]).read_text())


# --------------------------------------------------------------------------------- checking
class Checker:
    """Collects named pass/fail checks in one score category."""

    def __init__(self) -> None:
        self.results: list[tuple[str, str, bool, str]] = []

    def check(self, category: str, name: str, ok: bool, detail: str = "") -> None:
        self.results.append((category, name, bool(ok), detail))

    @property
    def failures(self) -> list[str]:
        return [f"[{c}] {n}: {d}" for c, n, ok, d in self.results if not ok]


def _ext(card: dict[str, Any]) -> dict[str, Any]:
    ext = (card.get("extension") or {}).get("org.mmcds.card")
    return ext if isinstance(ext, dict) else {}


def _cards_of(cards: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [_ext(c) for c in cards if _ext(c).get("kind") == kind]


def check_state(ck: Checker, expected: dict[str, Any], cards: list[dict[str, Any]]) -> None:
    states = _cards_of(cards, "state")
    if len(states) != 1 or not isinstance(states[0].get("state"), dict):
        # every expected field fails: a missing state card loses all its checks
        for key in expected:
            ck.check("state", f"state.{key}", False, f"expected one state card, got {len(states)}")
        return
    got = states[0]["state"]
    for key, want in expected.items():
        have = got.get(key, "<missing>")
        if key == "agents":
            for agent, status in want.items():
                if agent in STEROIDS and isinstance(have, dict) and agent not in have:
                    continue  # listing steroids is optional (CONTRACT's example omits dexamethasone)
                ck.check("state", f"agents.{agent}", (have or {}).get(agent) == status,
                         f"want {status}, got {(have or {}).get(agent) if isinstance(have, dict) else have}")
            extra = sorted(set(have or {}) - set(want)) if isinstance(have, dict) else ["<not a dict>"]
            ck.check("state", "agents.no-extra", not extra, f"unexpected agents {extra}")
        elif key == "classes":
            for cls, status in want.items():
                val = have.get(cls) if isinstance(have, dict) else have
                ck.check("state", f"classes.{cls}", val == status, f"want {status}, got {val}")
        elif key in ("cytogenetics", "transplant"):
            for sub, sub_want in want.items():
                val = have.get(sub, "<missing>") if isinstance(have, dict) else have
                if sub == "findings" and isinstance(val, list):
                    ok = sorted(val) == sorted(sub_want)
                elif isinstance(sub_want, list) and len(sub_want) == 2 and all(isinstance(x, int) for x in sub_want):
                    ok = isinstance(val, (int, float)) and not isinstance(val, bool) and sub_want[0] <= val <= sub_want[1]
                else:
                    ok = val == sub_want
                ck.check("state", f"{key}.{sub}", ok, f"want {sub_want}, got {val}")
        else:
            ck.check("state", key, have == want, f"want {want}, got {have}")


def check_patient_view(ck: Checker, exp: dict[str, Any], cards: list[dict[str, Any]]) -> None:
    cat = "setting/options/notices"
    if exp.get("quiet"):
        ck.check(cat, "quiet", cards == [], f"expected no cards, got {[_ext(c).get('kind') for c in cards]}")
        return
    if "state" in exp:
        check_state(ck, exp["state"], cards)
    for text in exp.get("state_detail_include", []):
        # words the state card must say to the clinician (e.g. which data are missing)
        details = [str(c.get("detail") or "") for c in cards if _ext(c).get("kind") == "state"]
        ck.check("state", f"state-detail+{text}", any(text in d for d in details), "not in the state card's detail")
    options_cards = _cards_of(cards, "options")
    opt = options_cards[0] if len(options_cards) == 1 else {}
    if exp.get("setting") == "on-therapy":
        # the current line is running: no next-line menu at all (CONTRACT)
        ck.check(cat, "setting", not options_cards, f"on-therapy: expected no options card, got {len(options_cards)}")
    needs_options = any(k in exp for k in ("setting", "preferred_include", "options_include", "avoid_include")) \
        and exp.get("setting") != "on-therapy"
    if needs_options:
        ck.check(cat, "options-card", len(options_cards) == 1, f"expected one options card, got {len(options_cards)}")
    options = [o for o in opt.get("options") or [] if isinstance(o, dict)]
    preferred = {o.get("regimen") for o in options if o.get("tier") == "preferred"}
    listed = {o.get("regimen") for o in options}
    avoid = {a.get("regimen") for a in opt.get("avoid") or [] if isinstance(a, dict)}
    if "setting" in exp and exp["setting"] != "on-therapy":
        ck.check(cat, "setting", opt.get("setting") == exp["setting"], f"want {exp['setting']}, got {opt.get('setting')}")
    for r in exp.get("preferred_include", []):
        ck.check(cat, f"preferred+{r}", r in preferred, f"preferred = {sorted(map(str, preferred))}")
    for r in exp.get("preferred_exclude", []):
        ck.check(cat, f"preferred-{r}", r not in preferred, f"preferred = {sorted(map(str, preferred))}")
    for r in exp.get("options_include", []):
        ck.check(cat, f"options+{r}", r in listed, f"options = {sorted(map(str, listed))}")
    for r in exp.get("options_exclude", []):
        ck.check(cat, f"options-{r}", r not in listed, f"options = {sorted(map(str, listed))}")
    for r in exp.get("avoid_include", []):
        ck.check(cat, f"avoid+{r}", r in avoid, f"avoid = {sorted(map(str, avoid))}")
    for r in exp.get("avoid_exclude", []):
        ck.check(cat, f"avoid-{r}", r not in avoid, f"avoid = {sorted(map(str, avoid))}")
    tier_of = {o.get("regimen"): o.get("tier") for o in options}
    for r, tier in (exp.get("tiers") or {}).items():
        ck.check(cat, f"tier {r}={tier}", tier_of.get(r) == tier, f"{r} tier = {tier_of.get(r)}")
    # a notice is a card of its own, or a line of the options / history card (extension `notices`)
    notices = {n.get("code") for n in _cards_of(cards, "notice")}
    notices |= {code for kind in ("options", "state") for ext in _cards_of(cards, kind) for code in ext.get("notices", [])}
    for code in exp.get("notices_include", []):
        ck.check(cat, f"notice+{code}", code in notices, f"notices = {sorted(map(str, notices))}")
    for code in exp.get("notices_exclude", []):
        ck.check(cat, f"notice-{code}", code not in notices, f"notices = {sorted(map(str, notices))}")
    # the hard safety rule of issue 4: never a regimen with a refractory agent as preferred
    if "state" in exp and exp["state"].get("agents"):
        refractory = {a for a, s in exp["state"]["agents"].items() if s == "refractory"}
        if refractory:
            bad = [o.get("regimen") for o in options if o.get("tier") == "preferred"
                   and refractory & set(_regimen_agents(str(o.get("regimen"))))]
            ck.check(cat, "no-preferred-with-refractory-agent", not bad, f"preferred with refractory agent: {bad}")


# regimen letters (CONTRACT vocabulary) -> agents, for the "never preferred" safety check
_LETTERS = [("Isa", "isatuximab"), ("Elo", "elotuzumab"), ("Ven", "venetoclax"), ("Pano", "panobinostat"),
            ("D", "daratumumab"), ("K", "carfilzomib"), ("V", "bortezomib"), ("I", "ixazomib"),
            ("R", "lenalidomide"), ("P", "pomalidomide"), ("T", "thalidomide"), ("S", "selinexor"),
            ("C", "cyclophosphamide"), ("M", "melphalan"), ("d", "dexamethasone")]


def _regimen_agents(code: str) -> list[str]:
    if not re.fullmatch(r"[A-Za-z]+", code) or code[0].islower():
        return []  # ide-cel, VDT-PACE, belantamab, clinical-trial...: not letter codes
    if code == "VMP":
        return ["bortezomib", "melphalan"]  # P = prednisone here
    out, i = [], 0
    while i < len(code):
        for prefix, agent in _LETTERS:
            if code.startswith(prefix, i):
                out.append(agent)
                i += len(prefix)
                break
        else:
            return []
    return [a for a in out if a != "dexamethasone"]


def check_order(ck: Checker, exp: dict[str, Any], cards: list[dict[str, Any]]) -> None:
    cat = "order findings"
    findings = _cards_of(cards, "finding")
    if exp.get("no_findings"):
        ck.check(cat, "no-findings", not findings, f"got {[f.get('code') for f in findings]}")
    for want in exp.get("findings_include", []):
        matches = [f for f in findings if f.get("code") == want["code"]]
        ck.check(cat, f"finding+{want['code']}", bool(matches), f"findings = {[f.get('code') for f in findings]}")
        if matches:
            agents = set().union(*[set(f.get("agents") or []) for f in matches])
            orders = set().union(*[set(f.get("orders") or []) for f in matches])
            for a in want.get("agents", []):
                ck.check(cat, f"finding {want['code']} agent {a}", a in agents, f"agents = {sorted(agents)}")
            for o in want.get("orders", []):
                ck.check(cat, f"finding {want['code']} order {o}", o in orders, f"orders = {sorted(orders)}")
            for a in want.get("agents_exclude", []):
                ck.check(cat, f"finding {want['code']} not agent {a}", a not in agents, f"agents = {sorted(agents)}")
    for code in exp.get("findings_exclude", []):
        ck.check(cat, f"finding-{code}", all(f.get("code") != code for f in findings),
                 f"findings = {[(f.get('code'), f.get('agents')) for f in findings]}")


# ------------------------------------------------------------------------------ app & modes
@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    from cds_service.app import create_app  # imported here: the validity tests must run without the app

    tmp = tmp_path_factory.mktemp("vignettes")
    app = create_app({"AUTH_MODE": "none", "AS_OF_DATE": AS_OF, "DATABASE_URL": f"sqlite:///{tmp / 'store.sqlite3'}",
                      "DATA_DIR": str(tmp), "FHIR_TIMEOUT_S": 5})
    return app.test_client()


@pytest.fixture(scope="module", autouse=True)
def print_score() -> Iterator[None]:
    yield
    if not SCORE:
        return
    lines = ["", "=== vignette score ==="]
    for cat in CATEGORIES:
        modes = SCORE.get(cat)
        if not modes:
            continue
        parts = []
        tp = tt = 0
        for mode in REPORT_MODES:
            p, t = modes.get(mode, [0, 0])
            if mode in ("prefetch", "fetch"):
                tp, tt = tp + p, tt + t
            if t:
                parts.append(f"{mode} {p}/{t} = {100 * p / t:.1f}%")
        lines.append(f"{cat:<26} {100 * tp / tt if tt else 0:5.1f}% prefetch+fetch   ({'; '.join(parts)})")
    for mode, times in TIMINGS_MS.items():
        ts = sorted(times)
        lines.append(f"time {mode:<17} n={len(ts)} median {ts[len(ts) // 2]:.1f} ms, "
                     f"p95 {ts[int(0.95 * (len(ts) - 1))]:.1f} ms, max {ts[-1]:.1f} ms (in-process test client)")
    print("\n".join(lines))


def run(client, name: str, mode: str) -> tuple[int, Any, FhirTestServer | None]:
    exp = VIGNETTES[name]
    req = load_request(name)
    req["hookInstance"] = str(uuid.uuid4())
    service = exp.get("service") or SERVICE_FOR_HOOK[req["hook"]]
    if mode == "prefetch":
        t0 = time.perf_counter()
        resp = client.post(f"/cds-services/{service}", json=req)
        TIMINGS_MS[mode].append(1000 * (time.perf_counter() - t0))
        return resp.status_code, resp.get_json(silent=True), None
    prefetch = req.pop("prefetch")
    resources = resources_from_prefetch(prefetch)
    if mode == "partial-prefetch":
        # what the sandbox does when some prefetch queries fail: those keys are simply left out
        req["prefetch"] = {k: prefetch[k] for k in PARTIAL_KEEP}
    if mode == "fetch-token":
        # an EHR that sends fhirAuthorization: the FHIR server refuses requests without the bearer token
        req["fhirAuthorization"] = {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 300,
                                    "scope": "user/*.read", "subject": "mm-cds"}
    with FhirTestServer(resources, page_size=PAGE_SIZE if mode == "fetch-paged" else None,
                        require_token=TOKEN if mode == "fetch-token" else None,
                        include_supported=mode != "fetch-no-include") as srv:
        req["fhirServer"] = srv.base_url
        t0 = time.perf_counter()
        resp = client.post(f"/cds-services/{service}", json=req)
        TIMINGS_MS[mode].append(1000 * (time.perf_counter() - t0))
        return resp.status_code, resp.get_json(silent=True), srv


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(VIGNETTES))
def test_vignette(client, name: str, mode: str) -> None:
    exp = VIGNETTES[name]
    status, body, srv = run(client, name, mode)
    ck = Checker()
    category = "order findings" if exp["hook"] != "patient-view" else "setting/options/notices"
    ck.check(category, "http-200", status == 200, f"status {status}: {str(body)[:300]}")
    cards = body.get("cards", []) if status == 200 and isinstance(body, dict) else []
    if status == 200:
        from cds_service.hooks import schemas

        problems = schemas.check_response(body)
        ck.check(category, "response-schema", not problems, str(problems)[:300])
    if status != 200:
        # an error answer loses every check the vignette would have made
        if exp["hook"] == "patient-view":
            check_patient_view(ck, exp, [])
        else:
            check_order(ck, exp, [])
    elif exp["hook"] == "patient-view":
        check_patient_view(ck, exp, cards)
    else:
        check_order(ck, exp, cards)
    if srv is not None:
        # fetch mode must really have fetched (a Medication referenced elsewhere only via _include/read)
        ck.check(category, "fetched-from-fhir-server", srv.request_count > 0, "no request reached the FHIR server")
    for cat, _name, ok, _detail in ck.results:
        SCORE[cat][mode][1] += 1
        SCORE[cat][mode][0] += int(ok)
    assert not ck.failures, f"{name} ({mode}): {exp.get('description', '')}\n  " + "\n  ".join(ck.failures)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_config_variant(name: str, tmp_path: Path) -> None:
    """The same patient under an institution's settings: availability (CAR_T_AVAILABLE, UNAVAILABLE_AGENTS) or
    the region whose labels apply (LABEL_REGION)."""
    from cds_service.app import create_app

    exp = VARIANTS[name]
    config = {"AUTH_MODE": "none", "AS_OF_DATE": AS_OF, "DATABASE_URL": f"sqlite:///{tmp_path / 's.sqlite3'}",
              "DATA_DIR": str(tmp_path), **exp["config"]}
    client = create_app(config).test_client()
    req = load_request(name)
    resp = client.post(f"/cds-services/{exp['service']}", json=req)
    ck = Checker()
    ck.check("setting/options/notices", "http-200", resp.status_code == 200, str(resp.status_code))
    check_patient_view(ck, exp, (resp.get_json(silent=True) or {}).get("cards", []) if resp.status_code == 200 else [])
    for cat, _n, ok, _d in ck.results:
        SCORE[cat]["config-variants"][1] += 1
        SCORE[cat]["config-variants"][0] += int(ok)
    assert not ck.failures, f"{name}: {exp['description']}\n  " + "\n  ".join(ck.failures)


# ------------------------------------------------------------------- fixtures themselves
def test_every_fixture_has_an_expectation_and_back() -> None:
    files = {p.name for p in FIXTURES.glob("*.json")}
    expected_files = {v["file"] for v in VIGNETTES.values()}
    assert files == expected_files, (sorted(files - expected_files), sorted(expected_files - files))


@pytest.mark.parametrize("name", sorted(VIGNETTES))
def test_fixture_is_a_cds_hooks_request(name: str) -> None:
    req = load_request(name)
    exp = VIGNETTES[name]
    assert req["hook"] == exp["hook"] and SERVICE_FOR_HOOK[req["hook"]] == exp["service"]
    uuid.UUID(req["hookInstance"])
    assert req["fhirServer"] == "http://localhost/fhir"
    ctx = req["context"]
    assert ctx["userId"].startswith("Practitioner/") and isinstance(ctx["patientId"], str)
    assert set(req["prefetch"]) == set(PREFETCH_KEYS)
    assert req["prefetch"]["patient"]["id"] == ctx["patientId"]
    for key in PREFETCH_KEYS[1:]:
        bundle = req["prefetch"][key]
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
        for e in bundle.get("entry", []):
            res = e["resource"]
            if e["search"]["mode"] == "match":
                ref = (res.get("subject") or {}).get("reference")
                assert ref == f"Patient/{ctx['patientId']}", (key, res["id"])
            elif e["search"]["mode"] == "outcome":
                assert res["resourceType"] == "OperationOutcome"
            else:
                assert res["resourceType"] == "Medication"
    if req["hook"] != "patient-view":
        assert ctx["draftOrders"]["resourceType"] == "Bundle" and ctx["draftOrders"]["entry"]
        if req["hook"] == "order-select":
            ids = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in ctx["draftOrders"]["entry"]}
            assert set(ctx["selections"]) <= ids
    # every resource id is unique per type (a FHIR server could not hold it otherwise)
    resources = resources_from_prefetch(req["prefetch"])
    n_entries = 1 + sum(len(req["prefetch"][k].get("entry", [])) for k in PREFETCH_KEYS[1:])
    n_meds_included = sum(1 for k in PREFETCH_KEYS[1:] for e in req["prefetch"][k].get("entry", [])
                          if e["search"]["mode"] != "match")
    assert len(resources) >= n_entries - n_meds_included


@pytest.mark.parametrize("name", sorted(VIGNETTES))
def test_fixture_resources_are_valid_r4(name: str) -> None:
    """Clean encodings must be valid FHIR R4 (R4B models); only the deliberately non-conformant drafts
    (sandbox shape, DSTU2 MedicationOrder) are exempt - and only the drafts."""
    from fhir.resources.R4B.bundle import Bundle
    from fhir.resources.R4B.patient import Patient

    req = load_request(name)
    Patient.model_validate(req["prefetch"]["patient"])
    for key in PREFETCH_KEYS[1:]:
        Bundle.model_validate(req["prefetch"][key])
    if req["hook"] != "patient-view":
        drafts = req["context"]["draftOrders"]
        if VIGNETTES[name].get("nonconformant"):
            with pytest.raises((ValueError, KeyError)):  # KeyError: R4 knows no MedicationOrder
                Bundle.model_validate(drafts)
        else:
            Bundle.model_validate(drafts)


def test_expectations_use_contract_vocabulary() -> None:
    text = CONTRACT.read_text()
    settings = {"first-relapse-len-sensitive", "first-relapse-len-refractory", "first-relapse-after-anti-cd38",
                "later-relapse", "triple-class-refractory", "on-therapy", "not-relapsed", "insufficient-data"}
    for name, exp in VIGNETTES.items():
        if "setting" in exp:
            assert exp["setting"] in settings, name
        words: list[str] = []
        for key in ("preferred_include", "preferred_exclude", "options_include", "options_exclude",
                    "avoid_include", "avoid_exclude", "notices_include", "notices_exclude", "findings_exclude"):
            words += exp.get(key, [])
        words += [f["code"] for f in exp.get("findings_include", [])]
        words += [a for f in exp.get("findings_include", []) for a in f["agents"]]
        words += list((exp.get("state") or {}).get("agents", {}))
        if text is not None:
            for w in words:
                assert f"{w}" in text, f"{name}: {w!r} is not CONTRACT vocabulary"


def test_fetch_mode_needs_include_for_referenced_medications() -> None:
    """The Medication of p09 is only reachable via _include/read: a plain patient search misses it."""
    import requests

    req = load_request("p09-d-two-lines-medication-reference")
    with FhirTestServer(resources_from_prefetch(req["prefetch"])) as srv:
        pid = req["context"]["patientId"]
        plain = requests.get(f"{srv.base_url}/MedicationRequest", params={"patient": pid}, timeout=5).json()
        assert all(e["search"]["mode"] == "match" for e in plain["entry"])
        inc = requests.get(f"{srv.base_url}/MedicationRequest",
                           params={"patient": pid, "_include": "MedicationRequest:medication"}, timeout=5).json()
        assert {e["resource"]["id"] for e in inc["entry"] if e["search"]["mode"] == "include"} == {
            "vg-p09-med-pomalidomide-rx-in", "vg-p09-med-bortezomib-rx-product", "vg-p09-med-dexamethasone-rx-in"}


def test_regimen_agents_parser() -> None:
    assert _regimen_agents("IsaPd") == ["isatuximab", "pomalidomide"]
    assert _regimen_agents("DRd") == ["daratumumab", "lenalidomide"]
    assert _regimen_agents("VenVd") == ["venetoclax", "bortezomib"]
    assert _regimen_agents("VMP") == ["bortezomib", "melphalan"]
    assert _regimen_agents("ide-cel") == [] and _regimen_agents("salvage-ASCT") == []


def test_fixtures_are_what_the_patient_data_generates() -> None:
    """The shipped fixtures are byte for byte what tools/vignettes/patients/*.yaml generate: no hand edits, no
    fixture without its patient file, no patient file whose fixtures were not regenerated."""
    from tools.vignettes.build import drift, render_all

    stale = drift(FIXTURES, render_all())
    assert not stale, f"fixtures differ from the patient data (run python tools/make_vignettes.py): {stale}"


# RxNorm / ATC codes the fixtures may use, each from a named source (house rule: never invent codes).
SOURCED_RXNORM = {
    # docs/reference/drug_codes.json (ingredients) and cibmtr_rxnorm_valuesets.fsh (products)
    "342369", "1369713", "10432", "358258", "1302966", "1721947", "1726104", "1747556", "6718", "3002", "3639",
    "3264", "8640", "1721954", "1723772", "1804997", "402244", "1806942", "2375139", "602910", "616114",
    "643714", "643720", "643722", "2619432",
    # Synthea sample (tests/data/synthea-10): aspirin 81 mg, metformin ER, TMP-SMX (allergy list), paclitaxel
    "243670", "860975", "10831", "583214",
}
SYNTHEA_RXNORM = {"243670", "860975", "10831", "583214"}


def _codes(obj: Any, system: str, out: set[str]) -> set[str]:
    if isinstance(obj, dict):
        if obj.get("system") == system and isinstance(obj.get("code"), str):
            out.add(obj["code"])
        for v in obj.values():
            _codes(v, system, out)
    elif isinstance(obj, list):
        for v in obj:
            _codes(v, system, out)
    return out


def test_drug_codes_are_sourced() -> None:
    rx: set[str] = set()
    atc: set[str] = set()
    for path in FIXTURES.glob("*.json"):
        data = json.loads(path.read_text())
        _codes(data, "http://www.nlm.nih.gov/research/umls/rxnorm", rx)
        _codes(data, "http://www.whocc.no/atc", atc)
    assert rx <= SOURCED_RXNORM, sorted(rx - SOURCED_RXNORM)
    # the pinned list is checked against the reference files the codes come from
    fsh = (REFERENCE / "cibmtr_rxnorm_valuesets.fsh").read_text()
    drugs = json.loads((REFERENCE / "drug_codes.json").read_text())
    known = {d["rxcui"] for d in drugs if d.get("rxcui")}
    known |= {c for d in drugs for v in (d.get("other_rxnorm_codes") or {}).values() for c in re.findall(r"\d+", v)}
    known |= set(re.findall(r"\$RXN#(\d+)", fsh))
    assert known >= SOURCED_RXNORM - SYNTHEA_RXNORM, sorted(SOURCED_RXNORM - SYNTHEA_RXNORM - known)
    # 10831 (TMP-SMX) is in AllergyIntolerance, the others in MedicationRequest
    text = "".join(p.read_text() for p in SYNTHEA.glob("*.ndjson"))
    assert all(f'"code":"{c}"' in text for c in SYNTHEA_RXNORM)
    atc_known = {d.get("atc") for d in drugs} | {d.get("atc_previous") for d in drugs}
    assert atc <= atc_known, sorted(atc - atc_known)
