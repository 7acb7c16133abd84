"""python -m workload.argo render | validate | submit

render    write the manifests of every form into --out (default ./manifests), or one to stdout
validate  check manifests against Argo's CRD schemas and the rules Argo enforces beyond them, and
          each container template's pod against the Pod Security Standard "restricted"
submit    create a form on an Argo server through its REST API (token from $ARGO_TOKEN)
run-local run a manifest's pods here, in order, each pod's exact command line (argo/local.py)
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields
from pathlib import Path

FORM_NAMES = ("steps", "dag", "workflow", "standalone")
DEFAULT_OUT = Path("manifests")  # the repository's golden manifests, from its root


def golden(folder: Path = DEFAULT_OUT) -> dict[str, Path]:
    return {form: Path(folder) / f"{form}.yaml" for form in FORM_NAMES}


def _options(args: argparse.Namespace):
    from .build import Options

    planned = _plan(args.plan) if getattr(args, "plan", None) else {}
    values = {f.name: getattr(args, f.name, None) for f in fields(Options)}
    given = {k: v for k, v in values.items() if v is not None and v is not False}  # 0 is given
    if getattr(args, "no_metrics_output", False):
        given["metrics_output"] = False
    if given.get("claim") == "" or ("claim" not in given and "://" in given.get("root", "")):
        given["claim"] = None  # no PVC: `--claim ""`, or by default for a root URL
    return Options(**{**planned, **given})


def _plan(path: Path) -> dict:
    """The Options a plan fixes: the shape, the op, the pods' CPU, memory and read budget, the
    parallelism."""
    from workload.planner import read_plan

    plan = read_plan(path)
    memory = f"{plan['pod_memory_mb']}Mi"
    same = ["files", "fan_in", "final_fan_in", "parallelism", "op", "metrics_output"]
    same += ["read_budget", "file_bytes"]
    return {
        **{name: plan[name] for name in same},
        "level_cpu": plan["pod_cpu"],
        "level_memory": memory,
        "final_cpu": plan["pod_cpu"],
        "final_memory": memory,
    }


def render(args: argparse.Namespace) -> int:
    from .build import FORMS, check_size

    options = _options(args)
    manifests = {form: FORMS[form](options) for form in ((args.form,) if args.form else FORM_NAMES)}
    for form, manifest in manifests.items():
        check_size(manifest, options, form)  # nothing is written unless every form fits
    if args.form:
        sys.stdout.write(manifests[args.form].to_yaml())
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for form, path in golden(args.out).items():
        path.write_text(manifests[form].to_yaml())
        print(f"wrote {path}")
    return 0


def validate(args: argparse.Namespace) -> int:
    from .validate import validate_file

    bad = 0
    for path in args.files or golden().values():
        problems = validate_file(path, restricted_pods=args.pod_security == "restricted")
        for line in problems:
            print(f"{path}: {line}", file=sys.stderr)
        bad += bool(problems)
        print(f"{path}: {'ok' if not problems else f'{len(problems)} problems'}")
    return 1 if bad else 0


def submit(args: argparse.Namespace) -> int:
    from hera.workflows import Parameter

    from workload.command import pair
    from workload.errors import UsageError

    from . import submit as server
    from .build import dag_template, standalone_workflow, steps_template, workflow_from_template

    target = server.Server(
        host=args.host,
        namespace=args.namespace,
        token=os.environ.get("ARGO_TOKEN"),
        verify_tls=not args.insecure,
    )
    options = _options(args)
    params = dict(pair(p, "-p", "name=value") for p in args.parameter)
    if args.template:
        template = (steps_template if args.form == "steps" else dag_template)(options)
        arguments = template.arguments if isinstance(template.arguments, list) else []
        declared = {str(p.name) for p in arguments if isinstance(p, Parameter)}
        if unknown := sorted(set(params) - declared):  # before anything is created
            raise UsageError(
                f"-p {unknown[0]}: the template has no such parameter "
                f"(it has {', '.join(sorted(declared))})"
            )
        server.create(target, template.to_dict())
        workflow = workflow_from_template(template, params)
    else:
        workflow = standalone_workflow(options, args.form)
        arguments = workflow.arguments if isinstance(workflow.arguments, list) else []
        for p in arguments:
            if isinstance(p, Parameter) and p.name in params:
                p.value = params.pop(p.name)
        if params:
            raise UsageError(f"-p {sorted(params)[0]}: the workflow has no such parameter")
    created = server.create(target, workflow.to_dict())["metadata"]
    print(f"submitted {created['name']} in namespace {created['namespace']}")
    return 0


def run_local(args: argparse.Namespace) -> int:
    from workload.command import pair

    from .local import describe_waves, run_manifest

    name, waves = run_manifest(
        args.manifest,
        parameters=dict(pair(p, "-p", "name=value") for p in args.parameter),
        volumes=dict(pair(v, "--volume", "CLAIM=PATH") for v in args.volume),
        secrets=args.secret,
        templates=args.template,
        parallelism=args.parallelism,
        name=args.name,
    )
    print(f"run {name}: its levels above l1 and its result are under {name}/ of the root")
    print("\n".join(describe_waves(waves)))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workload.argo", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def shape(p: argparse.ArgumentParser) -> None:
        p.add_argument("--files", type=int, help="input files (default 128)")
        p.add_argument("--fan-in", dest="fan_in", type=int, help="inputs per pod (default 2)")
        p.add_argument(
            "--final-fan-in",
            dest="final_fan_in",
            type=int,
            help="files the final pod reads at most (default 32)",
        )
        p.add_argument("--plan", type=Path, help="a plan from `workload plan --json`")
        p.add_argument(
            "--no-metrics-output",
            action="store_true",
            help="level pods keep their metrics in their logs, not as output parameters",
        )
        p.add_argument("--image", help="container image")
        p.add_argument("--root", help="root path or URL in the pods (default /mnt/vol)")
        p.add_argument("--op", help="merge, aggregate, or module:attribute of your own op")
        p.add_argument(
            "--claim",
            help='PVC mounted at /mnt/vol (default pvc-oss; none for a root URL, or with "")',
        )
        p.add_argument(
            "--run",
            help="the run's folder under the root for its levels above l1 and its result "
            '(default {{workflow.name}}, unique per run; "" for the root itself)',
        )
        p.add_argument(
            "--clean",
            action="store_true",
            help="the exit handler removes the run's levels above l1 once it has succeeded",
        )
        p.add_argument("--parallelism", type=int, help="pods at once (default 64)")
        p.add_argument("--retries", type=int, help="retries per pod (default 3)")
        p.add_argument(
            "--pod-deadline",
            dest="pod_deadline_seconds",
            type=int,
            help="seconds a pod attempt may run (default 3600)",
        )
        p.add_argument(
            "--workflow-deadline",
            dest="workflow_deadline_seconds",
            type=int,
            help="seconds the whole run may take (default 21600)",
        )
        p.add_argument(
            "--pending-timeout",
            dest="pending_timeout",
            help='a pod Pending this long fails (default 15m; "" for none)',
        )
        p.add_argument(
            "--ttl",
            dest="ttl_seconds",
            type=int,
            help="seconds a finished run is kept (default 86400)",
        )
        p.add_argument("--priority", type=int, help="the workflow's priority (default 0)")
        p.add_argument(
            "--archive-logs",
            dest="archive_logs",
            action="store_true",
            help="keep the pods' logs in the artifact repository (one must be configured)",
        )
        p.add_argument("--oss-endpoint", dest="oss_endpoint")
        p.add_argument("--service-account", dest="service_account")
        p.add_argument("--eci", action="store_true", help="Alibaba ECI sizing annotations")
        p.add_argument("--spot", action="store_true", help="ECI spot instances")
        p.add_argument(
            "--fail-fast",
            dest="fail_fast",
            action="store_true",
            help="steps form: failFast on the levels (Argo then retries nothing: -p retries=0)",
        )

    r = sub.add_parser("render", help="write the golden manifests, or print one form")
    shape(r)
    r.add_argument(
        "--form",
        choices=["steps", "dag", "workflow", "standalone"],
        help="print this form to stdout instead of writing the files",
    )
    r.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="folder to write (default ./manifests)"
    )
    v = sub.add_parser("validate", help="validate manifests offline")
    v.add_argument("files", nargs="*", type=Path, help="default: ./manifests/*.yaml")
    v.add_argument(
        "--pod-security",
        choices=["restricted", "none"],
        default="restricted",
        help="also check each container template's pod, with Argo's init and wait containers, "
        "against this Pod Security Standard (default restricted)",
    )
    s = sub.add_parser("submit", help="submit to an Argo server (its REST API)")
    shape(s)
    s.add_argument("--form", choices=["steps", "dag"], default="steps")
    s.add_argument("--host", required=True, help="Argo server URL, e.g. https://argo:2746")
    s.add_argument("--namespace", default="argo")
    s.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE")
    s.add_argument(
        "--template",
        action="store_true",
        help="create the WorkflowTemplate, then a Workflow that references it",
    )
    s.add_argument("--insecure", action="store_true", help="do not verify the server's TLS")
    x = sub.add_parser("run-local", help="run a manifest's pods here, in order")
    x.add_argument("manifest", type=Path, help="a Workflow or WorkflowTemplate (YAML or JSON)")
    x.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE")
    x.add_argument(
        "--volume",
        action="append",
        default=[],
        metavar="CLAIM=PATH",
        help="the folder that stands for a PersistentVolumeClaim mounted at /mnt/vol",
    )
    x.add_argument(
        "--secret", action="append", default=[], type=Path, help="a Kubernetes Secret manifest"
    )
    x.add_argument(
        "--template",
        action="append",
        default=[],
        type=Path,
        help="a file of WorkflowTemplates that a workflowTemplateRef names",
    )
    x.add_argument("--parallelism", type=int, default=2, help="pods at once (default 2)")
    x.add_argument(
        "--name",
        help="the run's name, {{workflow.name}} (default: the manifest's, else local-run)",
    )
    args = parser.parse_args(argv)
    from workload.errors import WorkloadError

    commands = {"render": render, "validate": validate, "submit": submit, "run-local": run_local}
    try:
        return commands[args.command](args)
    except WorkloadError as exc:  # a bad option or plan: one line and its exit code
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
