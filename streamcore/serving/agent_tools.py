"""The app's online state as tools for an agent: plans that read one snapshot, features, scores.

Built from what the app declares (its feature views and models); `streamcore.serving.mcp`
serves them over the Model Context Protocol.

    begin_plan(ttl_s)                          pin a snapshot: the plan id and the input position it reflects
    get_<view>(entity, plan?, features?)       an entity's features, with freshness and position
    score_<model>(entity, overrides?, plan?)   the model's score from the entity's features
    end_plan(plan)                             release the snapshot

Every call with a plan reads the state as of the plan's snapshot, so the calls of one plan
agree with each other while the stream moves on; a call without one reads the live state
and says so (``"read": "live"``). Inputs are checked as the HTTP endpoints check them, and
what HTTP answers with a 4xx is a `ToolError` here, whose message says what to change: an
expired plan (never stale data passed off as current), an entity the view has no events
of, an override the model does not read or that is not a number. A model call keeps its
timeout and fallback. On Kafka a live read of an entity another worker keeps is asked of
that worker (`served_by` names it); a plan reads only this worker's partitions.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson
from aiohttp import web

from streamcore.dataflow.stream import OperatorStep
from streamcore.online.models import Model
from streamcore.online.reads import EntityRead, NotOwned, SnapshotExpired, ViewDeclaration
from streamcore.serving.guards import MAX_SNAPSHOT_TTL_MS, PinLedger, TooManyPins, bad_overrides
from streamcore.serving.served import SERVED_BY, ServedWorker

PLAN = {"type": "string", "description": "a plan id from begin_plan: read as of the plan's snapshot (omit: live)"}


class ToolError(Exception):
    """A call the caller must change: an error result the agent sees, not a protocol failure."""


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DeclaredView:
    """A feature view as the app declares it, the stream that keeps it, and its features' schemas."""

    declaration: ViewDeclaration
    stream: str
    features: dict[str, dict[str, Any]]


Call = Callable[[Mapping[str, Any], str], Awaitable[dict[str, Any]]]
AskOwner = Callable[[NotOwned, str, str, bytes], Awaitable[web.Response]]
"""(not owned, method, path and query, body) -> the owning worker's HTTP answer (`Server.ask_owner`)."""


def tool_name(prefix: str, name: str) -> str:
    """A tool name MCP accepts (letters, digits, ``_ - .``) for a view or model name."""
    return prefix + re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def declared_views(worker: ServedWorker) -> dict[str, DeclaredView]:
    """The feature views the app's streams keep, by name, as the app declares them."""
    views = {}
    for pipeline in worker.app.pipelines:
        for step in pipeline.steps:
            if isinstance(step, OperatorStep) and isinstance(step.spec, ViewDeclaration):
                views[step.spec.name] = DeclaredView(step.spec, pipeline.name, step.spec.feature_schemas())
    return views


class AgentTools:
    """The tools of one worker's app; `call` runs one on the worker's loop, between batches."""

    def __init__(self, worker: ServedWorker, pins: PinLedger, ask_owner: AskOwner | None = None) -> None:
        """`ask_owner`: how a live read of an entity another worker keeps is sent to it (Kafka)."""
        self.worker = worker
        self.pins = pins
        self.ask_owner = ask_owner
        self.views = declared_views(worker)
        self.specs: list[ToolSpec] = []
        self._calls: dict[str, Call] = {}
        self._add(_BEGIN_PLAN, self._begin_plan)
        for name, view in sorted(self.views.items()):
            self._add(self._get_spec(name, view), self._getter(name))
        for _, model in sorted(worker.app.models.items()):
            self._add(self._score_spec(model), self._scorer(model))
        self._add(_END_PLAN, self._end_plan)

    def _add(self, spec: ToolSpec, call: Call) -> None:
        if spec.name in self._calls:
            raise ValueError(f"two tools would be named {spec.name!r}: rename a view or a model")
        self.specs.append(spec)
        self._calls[spec.name] = call

    async def call(self, name: str, arguments: Mapping[str, Any] | None, client: str) -> dict[str, Any]:
        """Run tool `name` for `client` (who pins plans, for the per-client limit)."""
        call = self._calls.get(name)
        if call is None:
            raise ToolError(f"no tool {name!r}; known: {sorted(self._calls)}")
        args = arguments or {}
        if not isinstance(args, Mapping):
            raise ToolError("the arguments must be an object")
        return await call(args, client)

    # -- plans ----------------------------------------------------------------------------------
    async def _begin_plan(self, args: Mapping[str, Any], client: str) -> dict[str, Any]:
        _only(args, {"ttl_s"})
        ttl_s = args.get("ttl_s", 60)
        limit = MAX_SNAPSHOT_TTL_MS // 1000
        if isinstance(ttl_s, bool) or not isinstance(ttl_s, int | float) or not 0 < ttl_s <= limit:
            raise ToolError(f"ttl_s must be a number of seconds in (0, {limit}]")
        try:
            snapshot = self.pins.pin(client, max(1, round(ttl_s * 1000)))
        except TooManyPins as exc:
            raise ToolError(str(exc)) from None
        pinned = snapshot.as_dict()
        return {"plan": pinned.pop("id"), **pinned}

    async def _end_plan(self, args: Mapping[str, Any], client: str) -> dict[str, Any]:
        _only(args, {"plan"})
        plan = _plan(args)
        if plan is None:
            raise ToolError('give the plan to end: {"plan": "<id from begin_plan>"}')
        try:
            self.worker.online.release(plan)
        except SnapshotExpired:
            raise ToolError(f"plan {plan!r} does not exist or has expired (nothing to end)") from None
        return {"plan": plan, "ended": True}

    # -- features -------------------------------------------------------------------------------
    def _get_spec(self, name: str, view: DeclaredView) -> ToolSpec:
        schemas = view.features
        listing = "; ".join(f"{feature}: {schema.get('description', '')}" for feature, schema in schemas.items())
        about = view.declaration.description or f"Features of a {view.declaration.entity}, kept by stream {view.stream}"
        return ToolSpec(
            tool_name("get_", name),
            f"{about.rstrip('.')}. Returns each feature's value with its freshness, and the input position "
            f"the answer reflects. Features: {listing}.",
            _arguments(
                entity=_entity(view.declaration.entity),
                plan=PLAN,
                features={
                    "type": "array",
                    "items": {"type": "string", "enum": list(schemas)},
                    "description": "only these features (omit: all)",
                },
            ),
        )

    def _getter(self, view: str) -> Call:
        async def get(args: Mapping[str, Any], client: str) -> dict[str, Any]:
            _only(args, {"entity", "plan", "features"})
            entity, plan = _entity_arg(args), _plan(args)
            wanted = args.get("features")
            known = list(self.views[view].features)
            if wanted is not None and (not isinstance(wanted, list) or not set(wanted) <= set(known)):
                raise ToolError(f"features must be a list of feature names of view {view!r}: {known}")
            try:
                answer = {**self._read(view, entity, plan).as_dict(), "served_by": None}
            except NotOwned as exc:
                path = f"/features/{quote(entity, safe='')}?view={quote(view, safe='')}"
                owned, served_by = await self._from_owner(exc, plan, "GET", path, b"")
                answer = {**owned["views"][0], "served_by": served_by}
                self._found(owned["views"][0]["found"], view, entity, plan)
            if wanted is not None:
                answer["features"] = {name: answer["features"][name] for name in wanted}
            return {"read": _kind(plan), **answer}

        return get

    def _read(self, view: str, entity: str, plan: str | None) -> EntityRead:
        """The entity's read here, or the `ToolError` that says why there is none to give
        (`NotOwned`: another worker keeps the entity; see `_from_owner`)."""
        try:
            read = self.worker.online.read(view, entity, plan)
        except SnapshotExpired:
            raise ToolError(
                f"plan {plan!r} has expired or was ended: begin a new plan (reads of an ended plan "
                "would no longer be of one moment)"
            ) from None
        self._found(read.found, view, entity, plan)
        return read

    @staticmethod
    def _found(found: bool, view: str, entity: str, plan: str | None) -> None:
        if not found:
            moment = "as of the plan" if plan else "yet"
            raise ToolError(f"view {view!r} has no events of {entity!r} {moment}: check the id")

    async def _from_owner(
        self, not_owned: NotOwned, plan: str | None, method: str, path: str, body: bytes
    ) -> tuple[dict[str, Any], str | None]:
        """A live read of an entity another worker keeps, asked of that worker over HTTP as
        HTTP reads are; a plan's snapshot lives here, so a plan cannot read it."""
        owner = self.worker.owner_url(not_owned.view, not_owned.partition)
        if plan is not None or self.ask_owner is None:
            where = f"the worker at {owner} keeps it" if owner else "it is moving between workers"
            raise ToolError(f"{not_owned}; {where}: begin the plan on that worker's /mcp")
        answer = await self.ask_owner(not_owned, method, path, body)
        document = orjson.loads(answer.body) if isinstance(answer.body, bytes) else {}
        if answer.status != 200:
            raise ToolError(
                f"the worker that keeps {not_owned.view!r} answered {answer.status}: {document.get('error')}"
            )
        return document, answer.headers.get(SERVED_BY)

    # -- models ---------------------------------------------------------------------------------
    def _score_spec(self, model: Model) -> ToolSpec:
        view = self.views.get(model.view)
        schemas = view.features if view is not None else {}
        entity = view.declaration.entity if view is not None else "entity"
        overrides = {
            name: {"type": ["number", "null"], "description": schemas.get(name, {}).get("description", name)}
            for name in model.features
        }
        about = model.description or f"Model {model.name}"
        return ToolSpec(
            tool_name("score_", model.name),
            f"{about.rstrip('.')}. Scores a {entity} from its features in view {model.view} "
            f"({', '.join(model.features)}); overrides replace features for a what-if. Returns the score, "
            f"whether the fallback ({model.fallback!r}) was used and why, the features it read and their position.",
            _arguments(
                entity=_entity(entity),
                overrides={
                    "type": "object",
                    "properties": overrides,
                    "additionalProperties": False,
                    "description": "feature values to use instead of the entity's (null: missing)",
                },
                plan=PLAN,
            ),
        )

    def _scorer(self, model: Model) -> Call:
        async def score(args: Mapping[str, Any], client: str) -> dict[str, Any]:
            _only(args, {"entity", "overrides", "plan"})
            entity, plan = _entity_arg(args), _plan(args)
            overrides = args.get("overrides") or {}
            if (problem := bad_overrides(overrides)) is not None:
                raise ToolError(problem)
            try:
                read = self._read(model.view, entity, plan)
            except NotOwned as exc:
                request = orjson.dumps({"entity": entity, "overrides": dict(overrides)})
                owned, served_by = await self._from_owner(exc, plan, "POST", f"/score/{quote(model.name)}", request)
                self._found(owned["found"], model.view, entity, plan)
                scored = {k: v for k, v in owned.items() if k not in ("found", "snapshot")}
                return {"read": "live", **scored, "plan": None, "served_by": served_by}
            try:
                inputs = model.inputs(read.values(), dict(overrides))
            except KeyError as exc:
                raise ToolError(str(exc.args[0])) from None
            result = await model.score_request(inputs)
            return {
                "read": _kind(plan),
                "model": model.name,
                "entity": entity,
                **result.as_dict(),
                "features": inputs,
                "position": read.as_dict()["position"],
                "plan": plan,
                "stale_ms": read.stale_ms,
                "served_by": None,
            }

        return score


_BEGIN_PLAN = ToolSpec(
    "begin_plan",
    "Start a plan: pin one snapshot of the online state, so that every get_/score_ call given the "
    "returned plan id reads the same moment, while events keep arriving. Returns the plan id, when "
    "it expires and the input position (per stream and partition, the next offset) it reflects. "
    "End it with end_plan.",
    {
        "type": "object",
        "properties": {
            "ttl_s": {
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": MAX_SNAPSHOT_TTL_MS // 1000,
                "description": "seconds until the plan expires (default 60)",
            }
        },
        "additionalProperties": False,
    },
)
_END_PLAN = ToolSpec(
    "end_plan",
    "End a plan: release its snapshot (it would expire by itself at its ttl).",
    {"type": "object", "properties": {"plan": PLAN}, "required": ["plan"], "additionalProperties": False},
)


def _arguments(**properties: dict[str, Any]) -> dict[str, Any]:
    """The input schema of a tool about one entity: these arguments, `entity` required, no others."""
    return {"type": "object", "properties": properties, "required": ["entity"], "additionalProperties": False}


def _entity(key: str) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "description": f"the {key} (the entity's key)"}


def _only(args: Mapping[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(args) - allowed)
    if extra:
        raise ToolError(f"unknown argument(s) {extra}; this tool takes {sorted(allowed)}")


def _entity_arg(args: Mapping[str, Any]) -> str:
    entity = args.get("entity")
    if not isinstance(entity, str) or not entity:
        raise ToolError('give the entity: {"entity": "<key>"}')
    return entity


def _plan(args: Mapping[str, Any]) -> str | None:
    plan = args.get("plan")
    if plan is None:
        return None
    if not isinstance(plan, str) or not plan:
        raise ToolError("plan must be a plan id from begin_plan")
    return plan


def _kind(plan: str | None) -> str:
    """What a read is of: ``plan`` (its snapshot) or ``live`` (the state as it is now)."""
    return "live" if plan is None else "plan"
