"""/api/...: the Chamelaion API itself, endpoint by endpoint, behind the fault knobs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote

from . import bad_replies
from .contract import (
    INTERNAL_ERROR,
    NOT_FOUND,
    check_quota,
    lipsync_request,
    page_request,
    parse_generate_json,
    parse_generate_multipart,
    presented_token,
    usable_account,
)
from .faults import FaultDice, Faults, fault_response
from .routing import (
    ApiError,
    DropConnection,
    Request,
    Response,
    RouteTable,
    error_response,
    json_response,
    resolve_dot_segments,
    route,
)
from .store import Account, Store, StoreWasReset
from .traffic import Traffic


class Backend(Protocol):
    """What the API needs from the sandbox besides its store: settings that tests replace while it runs."""

    @property
    def faults(self) -> Faults: ...

    @property
    def root_url(self) -> str: ...

    def take_rate_slot(self, token: str) -> None:
        """Admit one generation request for that token, or raise the contract's 429."""
        ...


@dataclass(frozen=True)
class Call:
    """One /api request on its way through: `epoch` is the store's when it arrived."""

    request: Request
    args: tuple[str, ...]
    epoch: int


Endpoint = Callable[[Call], Response]


class ApiArea:
    def __init__(self, backend: Backend, store: Store, traffic: Traffic, dice: FaultDice) -> None:
        self._backend = backend
        self._store = store
        self._traffic = traffic
        self._dice = dice
        self._routes: RouteTable[Endpoint] = RouteTable(
            [
                route("GET", r"/api/health", self._health),
                route("POST", r"/api/v1/lipsync/generate", self._generate),
                route("POST", r"/api/v1/lipsync/generate-with-media", self._upload),
                route("GET", r"/api/v1/lipsync/requests", self._list),
                route("GET", r"/api/v1/lipsync/requests/([^/]+)", self._get),
                route("GET", r"/api/v1/users/me", self._users_me),
            ]
        )

    def owns(self, path: str) -> bool:
        return path == "/api" or path.startswith("/api/")

    def answering(self, status: int) -> None:
        self._traffic.count(f"status_{status}")

    def respond(self, request: Request) -> Response:
        epoch = self._store.epoch
        self._traffic.count("requests")
        self._traffic.record_path(request.path)
        path = resolve_dot_segments(request.path)  # what a real server routes, not what was typed
        delay = self._dice.latency(self._backend.faults)
        if delay:
            time.sleep(delay)
        found = self._routes.find(request.method, path)
        generation = found.route is not None and found.route.handler in (self._generate, self._upload)

        fault = self._dice.next_fault(self._backend.faults, generation=generation) if path.startswith("/api/v1/") else None
        if fault:
            self._traffic.count("faults")
        if fault == "timeout":
            time.sleep(self._backend.faults.hang_seconds)
            fault = None
        if fault == "drop" or (fault == "drop-after-create" and not generation):
            raise self._dropped()
        if fault and fault != "drop-after-create":
            return fault_response(fault)

        try:
            response = found.handler_or_raise()(Call(request, found.args, epoch))
        except ApiError as error:
            response = error_response(error)
        if fault == "drop-after-create":
            raise self._dropped()
        return response

    def _dropped(self) -> DropConnection:
        self._traffic.count("dropped")
        return DropConnection()

    def _account(self, request: Request) -> tuple[str, Account]:
        token = presented_token(request.headers)
        return token, usable_account(self._store.account(token))

    # ----------------------------------------------------------------- endpoints

    def _health(self, call: Call) -> Response:
        self._traffic.count("health")
        return json_response(200, {"status": "ok"})

    def _generate(self, call: Call) -> Response:
        return self._create(call, upload=False)

    def _upload(self, call: Call) -> Response:
        return self._create(call, upload=True)

    def _create(self, call: Call, *, upload: bool) -> Response:
        token, account = self._account(call.request)
        # The provider's order: auth (done), quota, rate limit, then the body.
        check_quota(account)
        self._backend.take_rate_slot(token)
        body = call.request.read_body()
        parse = parse_generate_multipart if upload else parse_generate_json
        spec = parse(call.request.header("Content-Type"), body)
        try:
            job = self._store.create_job(token, spec, epoch=call.epoch)
        except StoreWasReset:
            raise ApiError(500, INTERNAL_ERROR) from None
        self._traffic.count("generate", *(["uploads"] if upload else []))
        return json_response(200, {"status": "success", "request_id": job.id})

    def _get(self, call: Call) -> Response:
        token, _ = self._account(call.request)
        self._traffic.count("get")
        job = self._store.find(token, unquote(call.args[0]))
        if job is None:
            raise ApiError(404, NOT_FOUND)
        return json_response(200, self._reply(lipsync_request(job, self._store.now(), self._backend.root_url)))

    def _list(self, call: Call) -> Response:
        token, _ = self._account(call.request)
        self._traffic.count("list")
        limit, offset, reference_id = page_request(call.request.query)
        jobs, total = self._store.page(token, limit=limit, offset=offset, reference_id=reference_id)
        now, root_url = self._store.now(), self._backend.root_url
        data = [self._reply(lipsync_request(job, now, root_url)) for job in jobs]
        return json_response(200, {"data": data, "pagination": {"limit": limit, "offset": offset, "total": total}})

    def _users_me(self, call: Call) -> Response:
        _, account = self._account(call.request)
        self._traffic.count("users_me")
        return json_response(200, {"name": account.name})

    def _reply(self, data: dict[str, Any]) -> dict[str, Any]:
        return bad_replies.spoil(data, self._backend.faults.bad_replies)
