"""The Pod Security Standards, offline: `restricted(pod_spec)` lists how a pod spec breaks the
"restricted" profile, which includes "baseline"
(https://kubernetes.io/docs/concepts/security/pod-security-standards/).

One line per violation, naming the pod or the container and the field, e.g.
"container wait: securityContext.allowPrivilegeEscalation must be false". A container's
security context overrides the pod's for the fields both have. RULES has one entry per control,
named as in the standard. Only the pod spec is read: the AppArmor annotations of the pod's
metadata are not checked (its appArmorProfile fields are).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

# Capabilities: what "baseline" lets a container add.
BASELINE_CAPABILITIES = {
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
}
# Sysctls: the safe set.
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
}
# Volume Types: what "restricted" allows.
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
PROFILES = {"RuntimeDefault", "Localhost"}  # AppArmor and seccomp profiles that may be used
PROBES = ("livenessProbe", "readinessProbe", "startupProbe")

Violations = Iterator[str]


def _containers(pod: dict) -> Iterator[tuple[str, dict]]:
    for kind in ("initContainers", "containers", "ephemeralContainers"):
        for c in pod.get(kind) or []:
            yield f"container {c.get('name')}", c


def _contexts(pod: dict) -> Iterator[tuple[str, dict]]:
    """The pod's security context, then each container's, with who sets it."""
    yield "pod", pod.get("securityContext") or {}
    for who, c in _containers(pod):
        yield who, c.get("securityContext") or {}


def _effective(pod: dict, c: dict, field: str):
    """A container's setting, else the pod's."""
    own = (c.get("securityContext") or {}).get(field)
    return own if own is not None else (pod.get("securityContext") or {}).get(field)


def _host_process(pod: dict) -> Violations:
    for who, sc in _contexts(pod):
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            yield f"{who}: securityContext.windowsOptions.hostProcess must be false"


def _host_namespaces(pod: dict) -> Violations:
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            yield f"pod: {field} must be false"


def _privileged(pod: dict) -> Violations:
    for who, c in _containers(pod):
        if (c.get("securityContext") or {}).get("privileged"):
            yield f"{who}: securityContext.privileged must be false"


def _added(c: dict) -> list[str]:
    return ((c.get("securityContext") or {}).get("capabilities") or {}).get("add") or []


def _capabilities_baseline(pod: dict) -> Violations:
    for who, c in _containers(pod):
        for cap in _added(c):
            if cap not in BASELINE_CAPABILITIES:
                yield f"{who}: securityContext.capabilities.add {cap} is not allowed"


def _host_path(pod: dict) -> Violations:
    for v in pod.get("volumes") or []:
        if "hostPath" in v:
            yield f"volume {v.get('name')}: hostPath volumes are not allowed"


def _host_ports(pod: dict) -> Violations:
    for who, c in _containers(pod):
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                yield f"{who}: ports hostPort {port['hostPort']} must be 0 or unset"


def _host_probes(pod: dict) -> Violations:
    for who, c in _containers(pod):
        handlers = [(p, c.get(p) or {}) for p in PROBES]
        handlers += [(f"lifecycle.{h}", v or {}) for h, v in (c.get("lifecycle") or {}).items()]
        for where, handler in handlers:
            for kind in ("httpGet", "tcpSocket"):
                if (handler.get(kind) or {}).get("host"):
                    yield f"{who}: {where}.{kind}.host must be unset"


def _app_armor(pod: dict) -> Violations:
    for who, sc in _contexts(pod):
        kind = (sc.get("appArmorProfile") or {}).get("type")
        if kind is not None and kind not in PROFILES:
            yield f"{who}: securityContext.appArmorProfile.type {kind} is not allowed"


def _se_linux(pod: dict) -> Violations:
    for who, sc in _contexts(pod):
        options = sc.get("seLinuxOptions") or {}
        if (options.get("type") or "") not in SELINUX_TYPES:
            yield f"{who}: securityContext.seLinuxOptions.type {options['type']} is not allowed"
        for field in ("user", "role"):
            if options.get(field):
                yield f"{who}: securityContext.seLinuxOptions.{field} must be unset"


def _proc_mount(pod: dict) -> Violations:
    for who, c in _containers(pod):
        if (c.get("securityContext") or {}).get("procMount", "Default") != "Default":
            yield f"{who}: securityContext.procMount must be Default"


def _seccomp_baseline(pod: dict) -> Violations:
    for who, sc in _contexts(pod):
        if (sc.get("seccompProfile") or {}).get("type") == "Unconfined":
            yield f"{who}: securityContext.seccompProfile.type Unconfined is not allowed"


def _sysctls(pod: dict) -> Violations:
    for sysctl in (pod.get("securityContext") or {}).get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            yield f"pod: securityContext.sysctls {sysctl.get('name')} is not a safe sysctl"


def _volume_types(pod: dict) -> Violations:
    for v in pod.get("volumes") or []:
        for kind in sorted(set(v) - {"name"} - RESTRICTED_VOLUMES):
            yield f"volume {v.get('name')}: {kind} volumes are not allowed"


def _privilege_escalation(pod: dict) -> Violations:
    for who, c in _containers(pod):
        if (c.get("securityContext") or {}).get("allowPrivilegeEscalation") is not False:
            yield f"{who}: securityContext.allowPrivilegeEscalation must be false"


def _non_root(pod: dict) -> Violations:
    if (pod.get("securityContext") or {}).get("runAsNonRoot") is False:
        yield "pod: securityContext.runAsNonRoot must be true"
    for who, c in _containers(pod):
        if _effective(pod, c, "runAsNonRoot") is not True:
            yield f"{who}: securityContext.runAsNonRoot must be true (in the container or the pod)"


def _non_root_user(pod: dict) -> Violations:
    for who, sc in _contexts(pod):
        if sc.get("runAsUser") == 0:
            yield f"{who}: securityContext.runAsUser must not be 0"


def _seccomp_restricted(pod: dict) -> Violations:
    for who, sc in _contexts(pod):
        kind = (sc.get("seccompProfile") or {}).get("type")
        if kind is not None and kind not in PROFILES:
            yield f"{who}: securityContext.seccompProfile.type {kind} is not allowed"
    for who, c in _containers(pod):
        if _effective(pod, c, "seccompProfile") is None:
            yield (
                f"{who}: securityContext.seccompProfile.type must be RuntimeDefault or Localhost"
                " (in the container or the pod)"
            )


def _capabilities_restricted(pod: dict) -> Violations:
    for who, c in _containers(pod):
        dropped = ((c.get("securityContext") or {}).get("capabilities") or {}).get("drop") or []
        if "ALL" not in dropped:
            yield f"{who}: securityContext.capabilities.drop must include ALL"
        for cap in _added(c):
            if cap != "NET_BIND_SERVICE":
                yield f"{who}: securityContext.capabilities.add {cap} is not allowed"


# (control, profile, check, the baseline control it replaces in "restricted")
Rule = tuple[str, str, Callable[[dict], Violations], str | None]
RULES: list[Rule] = [
    ("HostProcess", "baseline", _host_process, None),
    ("Host Namespaces", "baseline", _host_namespaces, None),
    ("Privileged Containers", "baseline", _privileged, None),
    ("Capabilities", "baseline", _capabilities_baseline, None),
    ("HostPath Volumes", "baseline", _host_path, None),
    ("Host Ports", "baseline", _host_ports, None),
    ("Host Probes / Lifecycle Hooks", "baseline", _host_probes, None),
    ("AppArmor", "baseline", _app_armor, None),
    ("SELinux", "baseline", _se_linux, None),
    ("/proc Mount Type", "baseline", _proc_mount, None),
    ("Seccomp", "baseline", _seccomp_baseline, None),
    ("Sysctls", "baseline", _sysctls, None),
    # "restricted": everything above, and:
    ("Volume Types", "restricted", _volume_types, "HostPath Volumes"),
    ("Privilege Escalation", "restricted", _privilege_escalation, None),
    ("Running as Non-root", "restricted", _non_root, None),
    ("Running as Non-root user", "restricted", _non_root_user, None),
    ("Seccomp", "restricted", _seccomp_restricted, "Seccomp"),
    ("Capabilities", "restricted", _capabilities_restricted, "Capabilities"),
]
LEVELS = ("baseline", "restricted")


def check(pod_spec: dict, level: str) -> list[str]:
    """Every violation of profile `level` ("baseline" or "restricted")."""
    if level not in LEVELS:
        raise ValueError(f"unknown Pod Security Standard {level!r} (known: {', '.join(LEVELS)})")
    rules = [r for r in RULES if LEVELS.index(r[1]) <= LEVELS.index(level)]
    replaced = {r[3] for r in rules if r[3] and r[1] != "baseline"}
    found = [
        line
        for control, profile, rule, _ in rules
        if profile != "baseline" or control not in replaced
        for line in rule(pod_spec)
    ]
    return list(dict.fromkeys(found))


def restricted(pod_spec: dict) -> list[str]:
    """Every violation of the "restricted" profile (which includes "baseline")."""
    return check(pod_spec, "restricted")
