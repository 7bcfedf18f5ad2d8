"""Pydantic models of every kind in a mission repo; the JSON Schema is generated from them."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Discriminator,
    Field,
    SerializerFunctionWrapHandler,
    Tag,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from specs.agent_code import check_command, check_globs
from specs.fields import (
    ENV_NAME_PATTERN,
    SIZE_PATTERN,
    Decision,
    Duration,
    Money,
    Name,
    Risk,
    SecretRef,
    Size,
    Strict,
)
from specs.keys import check_gpg_key, check_ssh_key

API_VERSION = "mc/v1"
Kind = Literal["Mission", "Agent", "Task", "Workflow", "WorkflowRun", "Approval"]
KINDS: tuple[Kind, ...] = ("Mission", "Agent", "Task", "Workflow", "WorkflowRun", "Approval")
AgentStatus = Literal["active", "paused", "draining", "quarantined"]
MissionMode = Literal["normal", "paused", "draining"]
Protocol = Literal["files", "stdout", "claude-code"]
ApprovalMode = Literal["none", "before", "after"]
SandboxKind = Literal["bwrap", "none"]

# Bounds of the free counts (README, "The mission repo"); the others sit on their fields.
MAX_PRIORITY = 1_000_000
MAX_RETRY_NONCE = 1_000_000_000  # the state keeps it in a 32-bit column
MAX_TELEGRAM_ID = 2**53  # Telegram's ids fit 52 bits and a sign


def _env_value_kind(value: Any) -> str:
    """A mapping is a secret reference, anything else a plain value (one error, not two)."""
    return "secret" if isinstance(value, dict | SecretRef) else "plain"


EnvValue = Annotated[
    Annotated[str, Tag("plain")] | Annotated[SecretRef, Tag("secret")],
    Discriminator(_env_value_kind),
]


class Metadata(Strict):
    name: Name
    labels: dict[str, str] = {}


# --- Mission -------------------------------------------------------------------------------


class Approver(Strict):
    """A person whose signed commits and Telegram confirmations count as approvals."""

    name: Name
    ssh_keys: list[Annotated[str, AfterValidator(check_ssh_key)]] = Field(
        default=[], description="SSH public keys ('ssh-ed25519 AAAA… [comment]', no options)"
    )
    gpg_keys: list[Annotated[str, AfterValidator(check_gpg_key)]] = Field(
        default=[], description="ASCII-armored GPG public keys"
    )
    telegram_ids: list[Annotated[int, Field(ge=1, le=MAX_TELEGRAM_ID)]] = []


class RuleMatch(Strict):
    """What a policy rule applies to; every given criterion must match (empty = anything)."""

    kind: list[Kind] = []
    action: list[Literal["create", "update", "delete", "dispatch"]] = []
    name: list[str] = Field(default=[], description="Resource names; '*' globs allowed")
    agent: list[Name] = []
    capability: list[Name] = []
    labels: dict[str, str] = {}
    fields: list[str] = Field(
        default=[], description="Changed field paths such as spec.command (prefix match)"
    )
    cost_over: Money | None = Field(default=None, description="Estimated cost above this (USD)")


class PolicyRule(Strict):
    name: str
    match: RuleMatch = RuleMatch()
    decide: Decision


class Policy(Strict):
    rules: list[PolicyRule] = []
    approval_ttl: Duration = "24h"

    @field_validator("rules")
    @classmethod
    def _unique_rule_names(cls, value: list[PolicyRule]) -> list[PolicyRule]:
        names = [r.name for r in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(
                f"policy rule named twice: {', '.join(dupes)} (plans cite rules by name)"
            )
        return value


class MissionBudget(Strict):
    daily_usd: Money | None = None


class TelegramConfig(Strict):
    chat_id: int = Field(ge=-MAX_TELEGRAM_ID, le=MAX_TELEGRAM_ID)
    token: SecretRef
    base_url: str | None = None


class ExecutorConfig(Strict):
    """Where agents run: `local` (this machine) or `ray` (a Ray cluster at `address`: "auto",
    "HOST:PORT" of the head, or "ray://HOST:10001"; runs of one `namespace` share a ledger)."""

    kind: Literal["local", "ray"] = "local"
    address: str | None = None
    namespace: Name | None = Field(default=None, description="Ray namespace (default: mc)")

    @model_serializer(mode="wrap")
    def _omit_no_namespace(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Left out when unset, so adding the field changed no existing mission's digest."""
        data: dict[str, Any] = handler(self)
        if data.get("namespace") is None:
            data.pop("namespace", None)
        return data


RAY_RESOURCE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$"


def _check_resources(value: dict[str, float | str]) -> dict[str, float | str]:
    """num_cpus / num_gpus / custom names: counts >= 0; memory: a size ("2Gi")."""
    for key, amount in value.items():
        if key == "memory":
            if not isinstance(amount, str) or not re.fullmatch(SIZE_PATTERN, amount):
                raise ValueError("resources.memory is a size such as '2Gi'")
        elif isinstance(amount, str) or not 0 <= amount <= 1_000_000:
            raise ValueError(f"resources.{key} must be a number from 0 to 1000000")
    return value


class DropLimits(Strict):
    """Bounds on the content drops one run may leave under out/ (apparent sizes)."""

    max_file: Size = Field(default="25Mi", description="Largest single file")
    max_run: Size = Field(default="100Mi", description="All of one run's drops together")
    max_files: int = Field(default=1000, ge=0, le=100_000, description="Files per run")


class MissionSpec(Strict):
    description: str = ""
    mode: MissionMode = "normal"
    approvers: list[Approver] = []
    policy: Policy = Policy()
    budget: MissionBudget = MissionBudget()
    telegram: TelegramConfig | None = None
    executor: ExecutorConfig = ExecutorConfig()
    sandbox: SandboxKind = Field(
        default="bwrap",
        description="Every agent runs in a bubblewrap sandbox; 'none' turns it off (loudly)",
    )
    drops: DropLimits = DropLimits()

    @field_validator("approvers")
    @classmethod
    def _unique_approvers(cls, value: list[Approver]) -> list[Approver]:
        names = [a.name for a in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"approver declared twice: {', '.join(dupes)}")
        return value


# --- Agent ---------------------------------------------------------------------------------


class AgentBudget(Strict):
    daily_usd: Money | None = None
    per_run_usd: Money | None = None


class Mount(Strict):
    """A host path an agent's sandbox may see, at the same path inside."""

    path: str = Field(description="Absolute host path")
    mode: Literal["ro", "rw"] = "ro"

    @field_validator("path")
    @classmethod
    def _absolute_and_plain(cls, value: str) -> str:
        parts = value.split("/")
        if not value.startswith("/") or ".." in parts or "\0" in value:
            raise ValueError(f"mount path {value!r} must be absolute, without '..'")
        if value.rstrip("/") == "":
            raise ValueError("mounting / would show the agent the whole host")
        return value


class AgentLimits(Strict):
    """Resource limits of one run (setrlimit on the sandboxed process tree)."""

    memory: Size | None = Field(default=None, description="Address space per process")
    processes: int | None = Field(default=None, ge=1, le=1_000_000)
    open_files: int = Field(default=4096, ge=16, le=1_048_576)
    file_size: Size = Field(default="1Gi", description="Largest file the agent may write")
    cpu_time: Duration | None = Field(default=None, description="CPU seconds per process")


class AgentSpec(Strict):
    role: str = ""
    capabilities: list[Name] = []
    command: list[str] = Field(min_length=1, description="argv run once per task attempt")
    code: list[str] = Field(
        default=[],
        description="Repo files the agent runs besides the {repo}/… paths of its command"
        " (globs from the repo root); their content is part of the agent's digest",
    )
    # Set by mc, never by hand: {path: git blob id} of every file `command` and `code` name.
    code_blobs: SkipJsonSchema[dict[str, str]] = {}
    protocol: Protocol = "files"
    env: dict[Annotated[str, Field(pattern=ENV_NAME_PATTERN)], EnvValue] = Field(
        default={}, description="Plain values, or secrets by reference: {from_env: NAME}"
    )
    concurrency: int = Field(default=1, ge=1, le=1024)
    timeout: Duration = "10m"
    heartbeat_timeout: Duration | None = None
    budget: AgentBudget = AgentBudget()
    status: AgentStatus = "active"
    sandbox: SandboxKind | None = Field(
        default=None, description="Overrides the mission's sandbox; 'none' runs unconfined"
    )
    mounts: list[Mount] = Field(default=[], description="Extra host paths the sandbox shows")
    network: Literal["none", "host"] = Field(
        default="none", description="'host' lets the agent reach the network (API keys, …)"
    )
    limits: AgentLimits = AgentLimits()
    executor: ExecutorConfig | None = Field(
        default=None, description="Overrides the mission's executor for this agent"
    )
    resources: Annotated[
        dict[Annotated[str, Field(pattern=RAY_RESOURCE_PATTERN)], float | str],
        AfterValidator(_check_resources),
    ] = Field(
        default={},
        description="Ray resource requests per run: num_cpus, num_gpus, memory ('2Gi'),"
        " custom names such as browser: 1 (executor: ray)",
    )

    @field_validator("command")
    @classmethod
    def _non_empty_program(cls, value: list[str]) -> list[str]:
        if not value[0].strip():
            raise ValueError("the program (first element of command) is empty")
        check_command(value)
        return value

    @field_validator("code")
    @classmethod
    def _code_inside_repo(cls, value: list[str]) -> list[str]:
        check_globs(value)
        return value

    @model_serializer(mode="wrap")
    def _omit_no_code(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """An agent naming no code, executor or resources dumps (and digests) as before these
        fields existed."""
        data: dict[str, Any] = handler(self)
        for key in ("code", "code_blobs", "executor", "resources"):
            if not data.get(key):
                data.pop(key, None)
        return data


# --- Task ----------------------------------------------------------------------------------


class RetryPolicy(Strict):
    max_attempts: int = Field(default=3, ge=1, le=100)
    initial_interval: Duration = "10s"
    backoff: float = Field(default=2.0, ge=1.0, le=10.0)
    max_interval: Duration = "5m"
    jitter: float = Field(default=0.1, ge=0.0, le=1.0)
    non_retryable_exit_codes: list[Annotated[int, Field(ge=-255, le=255)]] = []


class TaskBudget(Strict):
    per_run_usd: Money | None = None
    estimated_usd: Money | None = None


class TaskSpec(Strict):
    title: str = Field(min_length=1)
    prompt: str = ""
    agent: Name | None = None
    requires: list[Name] = Field(default=[], description="Capabilities the agent must have")
    depends_on: list[Name] = []
    inputs: dict[str, Any] = {}
    priority: int = Field(default=0, ge=-MAX_PRIORITY, le=MAX_PRIORITY)
    risk: Risk | None = None
    approval: ApprovalMode = "none"
    retry: RetryPolicy = RetryPolicy()
    timeout: Duration | None = None
    budget: TaskBudget = TaskBudget()
    max_rework: int | None = Field(
        default=None,
        ge=0,
        le=20,
        description="Rounds of requested changes at review before the task fails (default 2)",
    )

    @model_serializer(mode="wrap")
    def _omit_unset_rework(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Left out when unset, so adding the field changed no existing task's digest."""
        data: dict[str, Any] = handler(self)
        if data.get("max_rework", 0) is None:
            del data["max_rework"]
        return data

    @model_validator(mode="after")
    def _agent_or_requires(self) -> TaskSpec:
        if self.agent is None and not self.requires:
            raise ValueError("a task needs `agent: NAME` or `requires: [capability, …]`")
        return self


# --- Workflow ------------------------------------------------------------------------------


class WorkflowInput(Strict):
    required: bool = False
    default: Any = None
    enum: list[Any] | None = None
    description: str = ""


class WorkflowStep(Strict):
    id: Name
    agent: Name | None = None
    requires: list[Name] = []
    depends_on: list[Name] = []
    prompt: str = ""
    when: str | None = None
    retry: RetryPolicy | None = None
    timeout: Duration | None = None
    risk: Risk | None = None
    approval: ApprovalMode = "none"
    verifies: Name | None = None
    max_rework: int = Field(default=2, ge=0, le=20)
    on_failure: Literal["escalate", "fail", "continue"] = "escalate"

    @model_validator(mode="after")
    def _agent_or_requires(self) -> WorkflowStep:
        if self.agent is None and not self.requires:
            raise ValueError(f"step {self.id!r} needs `agent: NAME` or `requires: [capability]`")
        return self


class WorkflowSpec(Strict):
    description: str = ""
    inputs: dict[Name | str, WorkflowInput] = {}
    steps: list[WorkflowStep] = Field(min_length=1)


class WorkflowRunSpec(Strict):
    workflow: Name
    inputs: dict[str, Any] = {}
    retry_nonce: int = Field(default=0, ge=0, le=MAX_RETRY_NONCE)


# --- Approval ------------------------------------------------------------------------------

TARGET_PATTERN = r"^(Mission|Agent|Task|Workflow|WorkflowRun)/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"


class ApprovalSpec(Strict):
    target: Annotated[str, Field(pattern=TARGET_PATTERN, description="Kind/name")]
    digest: Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")]
    decision: Literal["approve", "deny", "request_changes"] = Field(
        default="approve",
        description="request_changes: a task in REVIEW goes back to its agent with `reason`",
    )
    reason: str = ""


# --- Documents -----------------------------------------------------------------------------


class _Doc(Strict):
    apiVersion: Literal["mc/v1"]
    metadata: Metadata


class MissionDoc(_Doc):
    kind: Literal["Mission"]
    spec: MissionSpec = MissionSpec()


class AgentDoc(_Doc):
    kind: Literal["Agent"]
    spec: AgentSpec


class TaskDoc(_Doc):
    kind: Literal["Task"]
    spec: TaskSpec


class WorkflowDoc(_Doc):
    kind: Literal["Workflow"]
    spec: WorkflowSpec


class WorkflowRunDoc(_Doc):
    kind: Literal["WorkflowRun"]
    spec: WorkflowRunSpec


class ApprovalDoc(_Doc):
    kind: Literal["Approval"]
    spec: ApprovalSpec


Document = Annotated[
    MissionDoc | AgentDoc | TaskDoc | WorkflowDoc | WorkflowRunDoc | ApprovalDoc,
    Field(discriminator="kind"),
]
DOC_MODELS: dict[str, type[_Doc]] = {
    "Mission": MissionDoc,
    "Agent": AgentDoc,
    "Task": TaskDoc,
    "Workflow": WorkflowDoc,
    "WorkflowRun": WorkflowRunDoc,
    "Approval": ApprovalDoc,
}
SPEC_MODELS: dict[str, type[Strict]] = {
    "Mission": MissionSpec,
    "Agent": AgentSpec,
    "Task": TaskSpec,
    "Workflow": WorkflowSpec,
    "WorkflowRun": WorkflowRunSpec,
    "Approval": ApprovalSpec,
}
