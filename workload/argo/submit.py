"""Creating a Workflow or WorkflowTemplate on an Argo server: the rendered document as it is.

Hera's `create()` serializes its own models, which know Argo v3's fields only: a v4 field our
templates carry (`pendingTimeout`, build._TemplateV4) would be dropped on the way. So the
document goes as `to_dict()` renders it, the very YAML `render` writes, through the server's
REST API (`POST /api/v1/workflows/{namespace}`, `/api/v1/workflow-templates/{namespace}`, as
Hera's WorkflowsService sends it). A refusal is one line naming the object and the HTTP
status, and its code comes from that status: 401 and 403 -> 77, any other 4xx -> 78, 429, 5xx
and no answer -> 75.
"""

from __future__ import annotations

from dataclasses import dataclass

from workload.errors import ConfigError, PermissionDenied, TransientError, WorkloadError, redact

PATHS = {
    "Workflow": ("workflows", "workflow"),
    "WorkflowTemplate": ("workflow-templates", "template"),
}
TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Server:
    host: str  # https://argo.example:2746
    namespace: str = "argo"
    token: str | None = None  # ARGO_TOKEN, with or without "Bearer "
    verify_tls: bool = True


def create(server: Server, document: dict) -> dict:
    """Create `document` (a Workflow or WorkflowTemplate as a dict); the server's object."""
    import requests

    kind = document.get("kind")
    if kind not in PATHS:
        raise ConfigError(f"cannot submit a {kind!r}: only Workflow and WorkflowTemplate")
    path, key = PATHS[kind]
    url = f"{server.host.rstrip('/')}/api/v1/{path}/{server.namespace}"
    headers = {"Content-Type": "application/json"}
    if server.token:
        headers["Authorization"] = "Bearer " + server.token.removeprefix("Bearer ")
    what = f"{kind} {document['metadata'].get('name') or document['metadata'].get('generateName')}"
    try:
        answer = requests.post(
            url,
            json={key: document, "namespace": server.namespace},
            headers=headers,
            verify=server.verify_tls,
            timeout=TIMEOUT_S,
        )
    except requests.RequestException as exc:  # no answer: host, connection, TLS, time-out
        host = redact(server.host)  # a URL may carry user:password@
        raise TransientError(f"{what}: no answer from {host} ({type(exc).__name__})") from None
    if answer.status_code >= 300:
        kind_of: type[WorkloadError] = TransientError
        if answer.status_code in (401, 403):
            kind_of = PermissionDenied
        elif 400 <= answer.status_code < 500 and answer.status_code != 429:
            kind_of = ConfigError
        raise kind_of(f"{what}: the Argo server refused it (HTTP {answer.status_code})")
    try:
        return answer.json()
    except ValueError:
        raise TransientError(f"{what}: the Argo server's answer is not JSON") from None
