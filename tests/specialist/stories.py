"""Treatment histories several specialist patients share (each written in the encoding asked for)."""

from __future__ import annotations

from tests.specialist import builders as sb


def len_maintenance_relapse(enc: str, pid: str = "sp-len") -> sb.Patient:
    """VRd → ASCT → lenalidomide maintenance, PD on maintenance 2026-08-20; anti-CD38 naive; ECOG 1."""
    p = sb.Patient(pid, birth="1960-06-06", gender="male")
    p.myeloma(onset="2021-01-10")
    sb.vrd_asct_len_maintenance(p, enc, pd_on_len="2026-08-20")
    p.ecog("2026-08-25", 1)
    return p


def tcr_non_penta(enc: str, pid: str = "sp-tcr") -> sb.Patient:
    """Four prior lines: VRd-ASCT-R (PD on R); DPd (PD); VCd (PD on bortezomib); ICd (PD).
    Triple-class refractory, not penta (carfilzomib never given), BCMA/GPRC5D naive."""
    p = sb.Patient(pid, birth="1957-02-14")
    p.myeloma(onset="2018-01-15")
    sb.vrd_asct_len_maintenance(p, enc, dx="2018-01-15", pd_on_len="2021-03-01")
    sb.course(p, ["daratumumab", "pomalidomide", "dexamethasone"], "2021-03-15", "2023-01-10", enc, pd=True)
    p.disease_status("2023-01-12")
    sb.course(p, ["bortezomib", "cyclophosphamide", "dexamethasone"], "2023-01-25", "2024-06-01", enc, pd=True,
              every=21)
    p.disease_status("2024-06-03")
    sb.course(p, ["ixazomib", "cyclophosphamide", "dexamethasone"], "2024-06-20", "2026-09-05", enc, pd=True)
    p.disease_status("2026-09-10")
    return p
