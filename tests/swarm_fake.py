"""A Swarm manager with state, for the fast tests: a `runner` for `DockerCLI` that keeps nodes,
secrets, services and their tasks, and refuses what Docker refuses.

What it copies from a real engine (Docker 20.10+ answers, as tests/test_swarm.py documents):
- `docker secret rm` of a secret a service still uses fails (exit 1, "is in use by the following
  service"), as Swarm's control API refuses it; an unknown secret fails too;
- `docker stack deploy` needs every external secret the file names to exist, labels the services
  with `com.docker.stack.namespace`, and leaves services the file no longer names (no --prune);
- `docker service rm`, `docker stack rm` (which removes the stack's services; the stack's
  containers and networks are gone at once here), `service ls` / `inspect`, a one-shot job's task.
- a `--format` or `--filter` without its value is refused by the CLI (exit 125, "flag needs an
  argument"), as cobra refuses a flag that takes one;
- `node ls`, `secret ls` and `service ls` print one line per row in the `--format` template given
  (`{{json .}}` the row's JSON, text around it as it is, as Go's templates print it; any other
  action is not modelled and raises);
Every call is kept in `calls` (argv after "docker", stdin); refused calls also in `refused`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import yaml

STACK_LABEL = "com.docker.stack.namespace"
JOBS = ("migrate",)  # restart_policy none: one task that completes


@dataclass
class Service:
    name: str
    image: str
    replicas: int
    secrets: set[str] = field(default_factory=set)
    labels: dict[str, str] = field(default_factory=dict)
    version: int = 1


# The functions of Go's text/template and the docker CLI's additions a `--format` may call.
_TEMPLATE_FUNCTIONS = {
    "json", "join", "table", "lower", "upper", "split", "title", "println", "pad", "truncate",
    "index", "len", "print", "printf", "and", "or", "not", "eq", "ne", "if", "range", "end",
}  # fmt: skip


def _unknown_template_function(args: tuple[str, ...]) -> str | None:
    """The first function a `--format` template calls that Go's templates do not have."""
    import re

    for index, arg in enumerate(args[:-1]):
        if arg == "--format":
            for name in re.findall(r"\{\{-?\s*([A-Za-z_]\w*)", args[index + 1]):
                if name not in _TEMPLATE_FUNCTIONS:
                    return name
    return None


class FakeSwarm:
    """See the module docstring; `answer` is the runner `DockerCLI(..., runner=)` calls."""

    def __init__(self, nodes: int = 1, manager: bool = True) -> None:
        self.nodes = {f"n{i}": {"Hostname": f"host{i}", "Labels": {}} for i in range(1, nodes + 1)}
        self.manager = manager
        self.secrets: dict[str, dict[str, str]] = {}  # name -> labels
        self.values: dict[str, str] = {}
        self.services: dict[str, Service] = {}
        self.volumes: dict[str, dict[str, str]] = {}
        self.job_exit = 0
        self.calls: list[tuple[tuple[str, ...], str | None]] = []
        self.refused: list[tuple[str, ...]] = []

    # --- the runner --------------------------------------------------------------------------

    def __call__(self, argv, stdin, env, timeout):
        args = tuple(argv[1:])
        self.calls.append((args, stdin))
        code, out, err = self._answer(args, stdin)
        if code:
            self.refused.append(args)
        return code, out, err

    def _answer(self, args, stdin):
        head = args[:2]
        refused = _unknown_template_function(args)
        if refused:  # the docker CLI parses --format before it asks the engine anything
            return (
                1,
                "",
                f'template parsing error: template: :1: function "{refused}" not defined\n',
            )
        if args and args[-1] in ("--format", "--filter"):  # the CLI parses its flags first
            return (
                125,
                "",
                f"flag needs an argument: {args[-1]}\nSee 'docker {' '.join(args[:2])} --help'.\n",
            )
        if args[:1] == ("info",):
            state = "active" if self.manager is not None else "inactive"
            return 0, json.dumps({"LocalNodeState": state, "ControlAvailable": self.manager}), ""
        handlers = {
            ("node", "ls"): self._node_ls,
            ("node", "inspect"): self._node_inspect,
            ("node", "update"): self._node_update,
            ("secret", "ls"): self._secret_ls,
            ("secret", "create"): self._secret_create,
            ("secret", "rm"): self._secret_rm,
            ("stack", "deploy"): self._stack_deploy,
            ("stack", "rm"): self._stack_rm,
            ("service", "ls"): self._service_ls,
            ("service", "inspect"): self._service_inspect,
            ("service", "rm"): self._service_rm,
            ("service", "ps"): self._service_ps,
            ("service", "scale"): self._service_scale,
            ("volume", "ls"): self._volume_ls,
            ("volume", "rm"): self._volume_rm,
        }
        if head in handlers:
            return handlers[head](args[2:], stdin)
        if args[:1] == ("inspect",):  # tasks of the job
            return 0, json.dumps([self._task(task_id) for task_id in args[1:]]), ""
        if args[:1] in (("ps",), ("network",)):
            return 0, "", ""  # stack rm removed its containers and networks at once
        raise AssertionError(f"FakeSwarm: unexpected docker call {args}")

    # --- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _filters(args) -> list[tuple[str, str | None]]:
        found = []
        for index, word in enumerate(args):
            if word == "--filter" and args[index + 1].startswith("label="):
                key, _, value = args[index + 1][len("label=") :].partition("=")
                found.append((key, value or None))
        return found

    @staticmethod
    def _matches(labels, filters) -> bool:
        return all(
            key in labels and (value is None or labels[key] == value) for key, value in filters
        )

    @staticmethod
    def _lines(rows, args=()) -> str:
        """One line per row in the `--format` template (the kit's is `{{json .}}`; text around
        an action is printed as it is, as Go's templates do); JSON lines without one."""
        template = "{{json .}}"
        if "--format" in args[:-1]:
            template = args[args.index("--format") + 1]
        around = re.split(r"\{\{\s*json\s+\.\s*\}\}", template)
        if any("{{" in text for text in around):
            raise NotImplementedError(f"the fake renders only {{{{json .}}}}, not {template!r}")
        return "".join(json.dumps(row).join(around) + "\n" for row in rows)

    def _by_ref(self, ref: str) -> Service | None:
        return self.services.get(ref) or next(
            (s for s in self.services.values() if f"id-{s.name}" == ref), None
        )

    # --- nodes -------------------------------------------------------------------------------

    def _node_ls(self, args, stdin):
        return (
            0,
            self._lines(
                ({"ID": i, "Hostname": n["Hostname"]} for i, n in self.nodes.items()), args
            ),
            "",
        )

    def _node_inspect(self, args, stdin):
        return 0, json.dumps([{"Spec": {"Labels": dict(self.nodes[args[0]]["Labels"])}}]), ""

    def _node_update(self, args, stdin):
        key, _, value = args[1].partition("=")
        self.nodes[args[2]]["Labels"][key] = value
        return 0, args[2] + "\n", ""

    # --- secrets -----------------------------------------------------------------------------

    def _secret_ls(self, args, stdin):
        filters = self._filters(args)
        rows = [{"ID": f"id-{n}", "Name": n} for n, labels in sorted(self.secrets.items())
                if self._matches(labels, filters)]  # fmt: skip
        return 0, self._lines(rows, args), ""

    def _secret_create(self, args, stdin):
        labels = {}
        rest = list(args)
        while rest and rest[0] == "--label":
            key, _, value = rest[1].partition("=")
            labels[key] = value
            rest = rest[2:]
        name = rest[0]
        if name in self.secrets:
            return 1, "", f"Error response from daemon: secret {name} already exists\n"
        assert rest[1:] == ["-"] and stdin, "a secret's value comes on stdin only"
        self.secrets[name] = labels
        self.values[name] = stdin
        return 0, f"id-{name}\n", ""

    def _secret_rm(self, args, stdin):
        name = args[0]
        if name not in self.secrets:
            return 1, "", f"Error: No such secret: {name}\n"
        users = sorted(s.name for s in self.services.values() if name in s.secrets)
        if users:
            return (
                1,
                "",
                (
                    "Error response from daemon: rpc error: code = InvalidArgument desc = "
                    f"secret '{name}' is in use by the following service: {', '.join(users)}\n"
                ),
            )
        del self.secrets[name]
        self.values.pop(name, None)
        return 0, name + "\n", ""

    # --- stacks and services -----------------------------------------------------------------

    def _stack_deploy(self, args, stdin):
        stack = args[-1]
        if "--resolve-image" in args:
            resolve = args[args.index("--resolve-image") + 1]
            if resolve not in ("always", "changed", "never"):  # the docker CLI's own check
                return 1, "", f"Invalid option {resolve} for flag --resolve-image\n"
        document = yaml.safe_load(stdin)
        external = {key: spec["name"] for key, spec in (document.get("secrets") or {}).items()}
        for name in external.values():
            if name not in self.secrets:
                return 1, "", f"failed to create service: secret not found: {name}\n"
        for short, spec in document["services"].items():
            name = f"{stack}_{short}"
            used = {external[item["source"]] for item in spec.get("secrets") or []}
            replicas = int((spec.get("deploy") or {}).get("replicas", 1))
            old = self.services.get(name)
            service = Service(name, spec["image"], replicas, used, {STACK_LABEL: stack})
            if old is not None:
                service.version = old.version + 1
            self.services[name] = service
            for volume in spec.get("volumes") or []:
                source = volume.get("source") if isinstance(volume, dict) else volume.split(":")[0]
                if source and not source.startswith("/"):
                    self.volumes.setdefault(f"{stack}_{source}", {STACK_LABEL: stack})
        return 0, "".join(f"Updating service {stack}_{s}\n" for s in document["services"]), ""

    def _stack_rm(self, args, stdin):
        stack = args[0]
        names = [n for n, s in self.services.items() if s.labels.get(STACK_LABEL) == stack]
        if not names:
            return 1, "", f"Nothing found in stack: {stack}\n"
        for name in names:
            del self.services[name]
        for name, labels in list(self.secrets.items()):
            if labels.get(STACK_LABEL) == stack:
                del self.secrets[name]
        return 0, "".join(f"Removing service {n}\n" for n in names), ""

    def _service_ls(self, args, stdin):
        filters = self._filters(args)
        rows = []
        for service in sorted(self.services.values(), key=lambda s: s.name):
            if not self._matches(service.labels, filters):
                continue
            short = service.name.split("_", 1)[1]
            running = 0 if short in JOBS else service.replicas
            desired = 0 if short in JOBS else service.replicas
            rows.append({"ID": f"id-{service.name}", "Name": service.name, "Image": service.image,
                         "Replicas": f"{running}/{desired}", "Ports": ""})  # fmt: skip
        return 0, self._lines(rows, args), ""

    def _service_inspect(self, args, stdin):
        if args[:1] == ("--format",):  # `--format {{.ID}} NAME`: does it exist?
            service = self._by_ref(args[2])
            if service is None:
                return 1, "", f"Error: no such service: {args[2]}\n"
            return 0, f"id-{service.name}\n", ""
        found = []
        for ref in args:
            service = self._by_ref(ref)
            if service is None:
                return 1, "[]", f"Error: no such service: {ref}\n"
            found.append(
                {
                    "ID": f"id-{service.name}",
                    "Spec": {
                        "Name": service.name,
                        "Labels": dict(service.labels),
                        "TaskTemplate": {"ContainerSpec": {"Image": service.image}},
                    },
                    "UpdateStatus": {"State": "completed", "Message": "update completed"}
                    if service.version > 1
                    else None,
                }
            )
        return 0, json.dumps(found), ""

    def _service_rm(self, args, stdin):
        service = self._by_ref(args[0])
        if service is None:
            return 1, "", f"Error: No such service: {args[0]}\n"
        del self.services[service.name]
        return 0, args[0] + "\n", ""

    def _service_ps(self, args, stdin):
        """`docker service ps` with the docker CLI's flags (v27: -q/--quiet, --no-trunc,
        --no-resolve, -f/--filter and --format with a value); any other flag is refused by
        the CLI before it asks the engine (exit 125, "unknown flag")."""
        rest = list(args[:-1])
        while rest:
            flag = rest.pop(0)
            if flag in ("-f", "--filter", "--format") and rest:
                rest.pop(0)
            elif flag not in ("-q", "--quiet", "--no-trunc", "--no-resolve"):
                return 125, "", f"unknown flag: {flag}\nSee 'docker service ps --help'.\n"
        service = self._by_ref(args[-1])
        if service is None:
            return 1, "", f"Error: No such service: {args[-1]}\n"
        return 0, f"task-{service.name}-{service.version}\n", ""

    def _service_scale(self, args, stdin):
        """`docker service scale [--detach] NAME=N...`: every name must exist (the wording of
        the CLI's "scaled to" and refusal lines is not recorded; no test reads them)."""
        pairs = [arg.partition("=") for arg in args if arg not in ("-d", "--detach")]
        for name, _eq, _count in pairs:
            if self._by_ref(name) is None:
                return 1, "", f"Error: No such service: {name}\n"
        for name, _eq, count in pairs:
            self._by_ref(name).replicas = int(count)
        return 0, "".join(f"{name} scaled to {count}\n" for name, _eq, count in pairs), ""

    def _task(self, task_id: str) -> dict:
        state = "complete" if self.job_exit == 0 else "failed"
        return {
            "ID": task_id,
            "CreatedAt": "2026-12-06T10:00:00.000000000Z",
            "Status": {"State": state, "Err": "" if state == "complete" else "task: non-zero exit",
                       "ContainerStatus": {"ExitCode": self.job_exit}},
        }  # fmt: skip

    # --- volumes -----------------------------------------------------------------------------

    def _volume_ls(self, args, stdin):
        """Names only with --quiet; else Docker's table (a header, then driver and name)."""
        filters = self._filters(args)
        names = [n for n, labels in sorted(self.volumes.items()) if self._matches(labels, filters)]
        if "--quiet" in args or "-q" in args:
            return 0, "".join(n + "\n" for n in names), ""
        return 0, "DRIVER    VOLUME NAME\n" + "".join(f"local     {n}\n" for n in names), ""

    def _volume_rm(self, args, stdin):
        """An unknown volume is refused, as the engine refuses it."""
        if args[0] not in self.volumes:
            return 1, "", f"Error response from daemon: get {args[0]}: no such volume"
        self.volumes.pop(args[0])
        return 0, args[0] + "\n", ""
