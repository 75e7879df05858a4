"""Vignette patients as data: tools/vignettes/patients/*.yaml -> fixtures/patients/*.json.

catalog (codes and drug encodings), chart (ids, bundles, record reader), clinical / medications
(encoders per resource kind), orders (draft shapes), build (requests, writing, drift check).
"""
