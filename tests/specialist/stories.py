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
    p.ecog("2026-09-10", 1)
    return p


def four_lines_then_cilta(enc: str, car_t_enc: str, pd_after_car_t: str | None) -> sb.Patient:
    """Line 1 VRd-ASCT-R (PD on R); line 2 DKd (PD); line 3 EloPd (PD); line 4 cilta-cel 2025-01-15."""
    p = sb.Patient("sp-cilta", birth="1962-04-02", gender="male")
    p.myeloma(onset="2019-03-01")
    sb.vrd_asct_len_maintenance(p, enc, dx="2019-03-01", pd_on_len="2021-09-10")
    sb.course(p, ["daratumumab", "carfilzomib", "dexamethasone"], "2021-09-25", "2023-02-20", enc, pd=True)
    p.disease_status("2023-02-24")
    sb.course(p, ["elotuzumab", "pomalidomide", "dexamethasone"], "2023-03-10", "2024-10-01", enc, pd=True)
    p.disease_status("2024-10-05")
    sb.car_t(p, "ciltacabtagene-autoleucel", "2025-01-15", car_t_enc)
    if pd_after_car_t:
        p.disease_status(pd_after_car_t)
        sb.relapse_condition(p, pd_after_car_t)
        p.ecog(pd_after_car_t, 1)
    else:
        sb.response(p, "2026-09-20", improved=True)
    return p


def elranatamab_failure(enc: str, brand: bool) -> sb.Patient:
    """Four lines to TCR (VRd-ASCT-R; DKd; PCd; ixazomib-dex), then elranatamab since 2025-06, PD on it."""
    p = sb.Patient("sp-elra", birth="1955-11-30", gender="male")
    p.myeloma(onset="2018-05-01")
    sb.vrd_asct_len_maintenance(p, enc, dx="2018-05-01", pd_on_len="2020-10-01")
    sb.course(p, ["daratumumab", "carfilzomib", "dexamethasone"], "2020-10-15", "2022-04-01", enc, pd=True)
    p.disease_status("2022-04-05")
    sb.course(p, ["pomalidomide", "cyclophosphamide", "dexamethasone"], "2022-04-20", "2023-08-01", enc, pd=True)
    p.disease_status("2023-08-05")
    sb.course(p, ["ixazomib", "dexamethasone"], "2023-08-20", "2025-05-15", enc, pd=True)
    p.disease_status("2025-05-20")
    sb.course(p, ["elranatamab"], "2025-06-01", "2026-09-20", enc, pd=True, every=14, brand=brand)
    p.disease_status("2026-09-25")
    p.ecog("2026-09-26", 1)
    return p


def talquetamab_failure(enc: str) -> sb.Patient:
    """VRd-ASCT-R (PD on R); DPd (PD); VCd (PD on bortezomib) — triple-class refractory, not penta —
    then talquetamab from 2024-07-01 (4th line), PD on it 2026-09-20. BCMA never targeted."""
    p = sb.Patient("sp-talq", birth="1956-08-08")
    p.myeloma(onset="2018-01-15")
    sb.vrd_asct_len_maintenance(p, enc, dx="2018-01-15", pd_on_len="2021-03-01")
    sb.course(p, ["daratumumab", "pomalidomide", "dexamethasone"], "2021-03-15", "2023-01-10", enc, pd=True)
    p.disease_status("2023-01-12")
    sb.course(p, ["bortezomib", "cyclophosphamide", "dexamethasone"], "2023-01-25", "2024-06-01", enc, pd=True,
              every=21)
    p.disease_status("2024-06-03")
    sb.course(p, ["talquetamab"], "2024-07-01", "2026-09-15", enc, pd=True, every=14)
    p.disease_status("2026-09-20")
    p.ecog("2026-09-20", 1)
    return p


def ide_cel_third_line(enc: str, product_enc: str) -> sb.Patient:
    """VRd-ASCT-R (PD on R 2022-02); DPd (PD 2024-01; triple-class exposed, bortezomib only exposed);
    ide-cel (Abecma) 2024-03-15 as 3rd line; PD 2026-09-15. BCMA refractory, GPRC5D naive."""
    p = sb.Patient("sp-idecel", birth="1961-01-30", gender="male")
    p.myeloma(onset="2019-01-10")
    sb.vrd_asct_len_maintenance(p, enc, dx="2019-01-10", pd_on_len="2022-02-01")
    sb.course(p, ["daratumumab", "pomalidomide", "dexamethasone"], "2022-02-15", "2024-01-05", enc, pd=True)
    p.disease_status("2024-01-08")
    sb.car_t(p, "idecabtagene-vicleucel", "2024-03-15", product_enc)
    p.disease_status("2026-09-15")
    p.ecog("2026-09-15", 1)
    return p
