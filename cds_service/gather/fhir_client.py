"""Fetch from the EHR's FHIR server: parallel searches, paging, timeouts, an overall deadline.

A FHIR server that errors, hangs, pages forever or answers HTML must never hang the hook or
yield a 5xx: every call has a per-request timeout, the whole gathering has a deadline, and
every failure becomes a short, patient-free problem string.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import orjson
import requests

from cds_service.gather.prefetch import bundle_resources, next_link
from cds_service.security.forwarding import check_destination

FHIR_ACCEPT = "application/fhir+json, application/json;q=0.9"
MAX_RESPONSE_BYTES = 50 * 1024 * 1024

_session_local = threading.local()
_pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="fhir")


def _session() -> requests.Session:
    """One keep-alive session per thread: connection reuse makes a round trip cheap."""
    s = getattr(_session_local, "session", None)
    if s is None:
        s = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=8, pool_maxsize=16, max_retries=0)
        s.mount("http://", adapter)
        s.mount("https://", adapter)
        _session_local.session = s
    return s


class FetchError(Exception):
    """A query could not be answered; the message is safe to log (no patient data)."""


@dataclass
class FetchResult:
    resources: list[dict[str, Any]] = field(default_factory=list)
    calls: int = 0
    problem: str | None = None


def _absolute(base: str, query: str) -> str:
    if query.startswith(("http://", "https://")):
        return query
    return urljoin(base.rstrip("/") + "/", query.lstrip("/"))


def _same_origin(base: str, url: str) -> bool:
    a, b = urlsplit(base), urlsplit(url)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


def get_json(url: str, token: str | None, timeout: float) -> dict[str, Any]:
    headers = {"Accept": FHIR_ACCEPT}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        resp = _session().get(url, headers=headers, timeout=(min(timeout, 3.0), timeout), stream=True)
    except requests.Timeout as exc:
        raise FetchError("timeout") from exc
    except requests.RequestException as exc:
        raise FetchError(f"connection failed ({type(exc).__name__})") from exc
    try:
        if resp.status_code >= 400:
            raise FetchError(f"HTTP {resp.status_code}")
        body = resp.raw.read(MAX_RESPONSE_BYTES + 1, decode_content=True)
    except requests.RequestException as exc:
        raise FetchError(f"read failed ({type(exc).__name__})") from exc
    except OSError as exc:
        raise FetchError("read failed") from exc
    finally:
        resp.close()
    if len(body) > MAX_RESPONSE_BYTES:
        raise FetchError("response too large")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise FetchError("not JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
        raise FetchError("not a FHIR resource")
    if data["resourceType"] == "OperationOutcome":
        raise FetchError("OperationOutcome")
    return data


def fetch_query(base: str, query: str, token: str | None, timeout: float, deadline: float,
                max_pages: int, start_url: str | None = None) -> FetchResult:
    """Run one search (or read), following `next` links on the same server until the deadline."""
    result = FetchResult()
    url: str | None = start_url or _absolute(base, query)
    pages = 0
    while url:
        remaining = deadline - time.monotonic()
        if remaining <= 0.05:
            result.problem = "deadline reached while paging" if pages else "deadline reached"
            break
        if (pages or start_url) and not _same_origin(base, url):
            result.problem = "next link to another server ignored"
            break
        result.calls += 1
        data = get_json(url, token, min(timeout, remaining))
        pages += 1
        if data.get("resourceType") == "Bundle":
            result.resources.extend(bundle_resources(data))
            url = next_link(data)
            if url and pages >= max_pages:
                result.problem = f"stopped after {max_pages} pages"
                break
        else:
            result.resources.append(data)
            url = None
    return result


def fetch_many(jobs: dict[str, tuple[str | None, str | None]], base: str, token: str | None, timeout: float,
               deadline: float, max_pages: int) -> dict[str, FetchResult]:
    """Run the queries in parallel. jobs: key -> (query, start_url); unfinished keys report the deadline.

    Results come back in the order of `jobs`, whatever order the answers arrived in: the same
    chart always gathers into the same resource list (record notes, the state cache's key).
    """
    check_destination(base, token)  # the EHR's token only to a server allowed for this call (security/forwarding.py)
    futures: dict[Future[FetchResult], str] = {}
    for key, (query, start_url) in jobs.items():
        fut = _pool.submit(fetch_query, base, query or "", token, timeout, deadline, max_pages, start_url)
        futures[fut] = key
    results: dict[str, FetchResult] = {}
    pending = set(futures)
    while pending:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        done, pending = wait(pending, timeout=remaining, return_when=FIRST_COMPLETED)
        for fut in done:
            key = futures[fut]
            try:
                results[key] = fut.result()
            except FetchError as exc:
                results[key] = FetchResult(problem=str(exc))
            except Exception as exc:  # a bug must not become a 500 for the EHR
                results[key] = FetchResult(problem=f"unexpected error ({type(exc).__name__})")
    for fut in pending:
        fut.cancel()
        results[futures[fut]] = FetchResult(problem="deadline reached")
    return {key: results[key] for key in jobs if key in results}
