"""The pages people use in a browser, served by the gateway on the same sessions, CSRF
protection and permission table as the API; they call the gateway's use cases in process,
never the API over HTTP.

Signing in and out, the second factor's code, enrolling an authenticator (its QR code, then
its first code, then the recovery codes, shown once), changing one's password, and setting
it with an invitation or reset link; the pages of each role's daily work build on this
layout.
"""

from __future__ import annotations

import base64
from typing import Any

from flask import Blueprint, Response, redirect, render_template, request, url_for
from marshmallow import ValidationError

from services.gateway import csrf
from services.gateway.access import permits, public
from services.gateway.api import ctx
from services.gateway.api.account import change_own_password
from services.gateway.api.passwords import set_password_with_link
from services.gateway.api.payments import activate, start_enrolment
from services.gateway.api.session import finish_second_factor, password_sign_in, web_session
from services.gateway.auth import current_principal, resolve_principal
from services.gateway.problems import PROBLEM_JSON
from services.gateway.schemas import DecisionSchema
from services.gateway.security import EventType
from services.gateway.sessions import Stage
from services.gateway.web import formatting
from shared.contracts.permissions import Action, may
from shared.contracts.roles import SECOND_FACTOR_ROLES

bp = Blueprint("web", __name__, template_folder="templates", static_folder="static", static_url_path="/assets")
bp.add_app_template_filter(formatting.money, "money")
bp.add_app_template_filter(formatting.when, "when")
bp.add_app_template_filter(formatting.status_words, "status_words")
bp.add_app_template_filter(formatting.due, "due")

EVERY_STAGE = (Stage.SECOND_FACTOR, Stage.ENROL, Stage.SIGNED_IN)
NEXT_PAGE = {Stage.SECOND_FACTOR: "web.second_factor", Stage.ENROL: "web.home", Stage.SIGNED_IN: "web.home"}


def page(template: str, status: int = 200, **values: Any) -> tuple[str, int]:
    """A page of the layout, with this session's CSRF token for its forms."""
    return render_template(template, csrf_token=csrf.token(), principal=resolve_principal(), **values), status


ERROR_TITLES = {
    400: "That did not work",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    409: "Not now",
    413: "Too large",
    422: "Not possible",
    429: "Too many attempts",
    503: "Unavailable for a moment",
}


def error_page(problem: Response) -> Response:
    """A problem as a page: its status, a title and the detail in words; never a stack trace."""
    title = ERROR_TITLES.get(problem.status_code, "Something went wrong")
    # No session or database is asked here: the error may be that they are away.
    body = render_template("message.html", csrf_token="", principal=None, title=title, text=problem_detail(problem))
    answer = Response(body, status=problem.status_code, mimetype="text/html")
    for name in ("Retry-After", "Allow", "WWW-Authenticate"):
        if name in problem.headers:
            answer.headers[name] = problem.headers[name]
    return answer


@bp.after_request
def refusals_as_pages(response: Response) -> Response:
    """A refusal of the guard at a page (403 not allowed, 429 too many...) is a page in words for
    a browser, with its status; a script asking for problem+json still gets the problem."""
    if response.mimetype != PROBLEM_JSON or request.path.startswith("/api/"):
        return response
    wanted = request.accept_mimetypes.best_match([PROBLEM_JSON, "application/json", "text/html"])
    return error_page(response) if wanted == "text/html" else response


def decision_of(form: Any) -> dict[str, Any] | str:
    """An approve-or-reject form (``decision``, ``comment``) as the API's ``DecisionSchema``
    body, or why it is not one, in words."""
    chosen = form.get("decision", "")
    if chosen not in ("approve", "reject"):
        return "Choose to approve or reject."
    try:
        return dict(DecisionSchema().load({"approve": chosen == "approve", "comment": form.get("comment", "")}))
    except ValidationError:  # the schema's one rule for a comment: its length
        return "A comment is at most 1,000 characters."


def problem_detail(answer: Response) -> str:
    body = answer.get_json(silent=True) or {}
    return str(body.get("detail") or "That did not work; try again.")


@bp.get("/")
@permits(Action.USE_OWN_ACCOUNT, stages=EVERY_STAGE, sessions_only=True)
def home() -> Any:
    """Who is signed in; a sign-in part-way goes on to its next step."""
    principal = current_principal()
    if principal.stage == Stage.SECOND_FACTOR:
        return redirect(url_for("web.second_factor"))
    second_factor = bool(principal.actor.roles & SECOND_FACTOR_ROLES)
    approver = may(principal.actor, Action.READ_INBOX)
    treasury = may(principal.actor, Action.EXECUTE_PAYMENT)
    rules = may(principal.actor, Action.READ_POLICY)
    funds = any(
        may(principal.actor, a) for a in (Action.REQUEST_REPLENISHMENT, Action.DECIDE_REPLENISHMENT, Action.READ_LEDGER)
    )
    directory = may(principal.actor, Action.READ_DIRECTORY)
    return page(
        "home.html",
        enrol=principal.stage == Stage.ENROL,
        second_factor=second_factor,
        approver=approver,
        treasury=treasury,
        rules=rules,
        funds=funds,
        alerts=may(principal.actor, Action.READ_ALERTS),
        dashboard=may(principal.actor, Action.READ_DASHBOARD),
        reports=may(principal.actor, Action.READ_REPORTS),
        runs=may(principal.actor, Action.READ_PAYMENT_RUNS),
        cash=any(
            may(principal.actor, a) for a in (Action.RECORD_CASH_COUNT, Action.DECIDE_VARIANCE, Action.READ_LEDGER)
        ),
        directory=directory,
    )


@bp.get("/sign-in")
@public
def sign_in_form() -> Any:
    return page("sign_in.html")


@bp.post("/sign-in")
@public
def sign_in() -> Any:
    """The form's post (its CSRF token checked by the guard, against the page's session)."""
    username, password = request.form.get("username", ""), request.form.get("password", "")
    if not username or not password:
        return page("sign_in.html", 400, error="Enter your username and password.", username=username)
    refusal = password_sign_in(username, password)
    if refusal is not None:
        return page("sign_in.html", refusal.status_code, error=problem_detail(refusal), username=username)
    return redirect(url_for(NEXT_PAGE[web_session().stage]), 303)


@bp.get("/sign-in/code")
@permits(Action.USE_OWN_ACCOUNT, stages=(Stage.SECOND_FACTOR,), sessions_only=True)
def second_factor() -> Any:
    return page("second_factor.html")


@bp.post("/sign-in/code")
@permits(Action.USE_OWN_ACCOUNT, stages=(Stage.SECOND_FACTOR,), sessions_only=True)
def second_factor_post() -> Any:
    """The code from the authenticator (or a recovery code) finishes the sign-in."""
    code, recovery = request.form.get("code", "").strip(), request.form.get("recovery_code", "").strip()
    if bool(code) == bool(recovery):
        return page("second_factor.html", 400, error="Enter the code from your authenticator, or a recovery code.")
    if code and not (code.isdigit() and len(code) == 6):
        return page("second_factor.html", 422, error="A code is six digits.")
    refusal = finish_second_factor(code, recovery)
    if refusal is not None:
        return page("second_factor.html", refusal.status_code, error=problem_detail(refusal))
    return redirect(url_for("web.home"), 303)


@bp.post("/sign-out")
@permits(Action.USE_OWN_ACCOUNT, stages=EVERY_STAGE, sessions_only=True)
def sign_out() -> Any:
    principal = current_principal()
    ctx().security.record(
        EventType.SIGNED_OUT, actor=principal.actor, subject=(principal.actor.user_id, principal.actor.username)
    )
    web_session().end()
    return redirect(url_for("web.sign_in_form"), 303)


ENROLLING = (Stage.ENROL, Stage.SIGNED_IN)


@bp.get("/enrol")
@permits(Action.ENROL_SECOND_FACTOR, stages=ENROLLING, sessions_only=True)
def enrol() -> Any:
    return page("enrol.html")


@bp.post("/enrol")
@permits(Action.ENROL_SECOND_FACTOR, stages=ENROLLING, sessions_only=True)
def enrol_start() -> Any:
    """A new secret: its QR code to scan, and the form for the first code it shows."""
    answer = start_enrolment()
    if isinstance(answer, Response):  # refused, or still running (202): say so
        return _enrolment_unfinished(answer)
    body = answer[0]
    qr = base64.b64encode(str(body["qr_svg"]).encode()).decode()
    return page("enrol_scan.html", qr=qr, uri=body["provisioning_uri"])


def _enrolment_unfinished(answer: Response) -> Any:
    """The enrolment page again, saying why: the refusal, or that the service is still at it."""
    if answer.status_code < 400:
        return page("enrol.html", 202, error="Still working on it: try again in a moment.")
    return page("enrol.html", answer.status_code, error=problem_detail(answer))


@bp.post("/enrol/code")
@permits(Action.ENROL_SECOND_FACTOR, stages=ENROLLING, sessions_only=True)
def enrol_activate() -> Any:
    code = request.form.get("code", "").strip()
    if not (code.isdigit() and len(code) == 6):
        return page("enrol.html", 400, error="A code is six digits: enrol again and enter the code your app shows.")
    answer = activate(code)
    if isinstance(answer, Response):
        return _enrolment_unfinished(answer)
    return page("recovery_codes.html", codes=answer[0]["recovery_codes"])


@bp.get("/account/password")
@permits(Action.USE_OWN_ACCOUNT, sessions_only=True)
def password_form() -> Any:
    return page("password.html")


@bp.post("/account/password")
@permits(Action.USE_OWN_ACCOUNT, sessions_only=True)
def password_change() -> Any:
    current, new = request.form.get("current_password", ""), request.form.get("new_password", "")
    if new != request.form.get("repeat_password", ""):
        return page("password.html", 400, error="The new password and its repetition differ.")
    refusal = change_own_password(current, new)
    if refusal is not None:
        return page("password.html", refusal.status_code, error=problem_detail(refusal))
    return page("message.html", title="Password changed", text="Your password is changed; your other sessions ended.")


@bp.get("/password/set")
@public
def password_link_form() -> Any:
    token = request.args.get("token", "")
    if not token or ctx().accounts.link_user(token) is None:
        return page("message.html", 404, title="Link not valid", text=LINK_GONE)
    return page("password_set.html", token=token)


@bp.post("/password/set")
@public
def password_link_set() -> Any:
    token, password = request.form.get("token", ""), request.form.get("password", "")
    if password != request.form.get("repeat_password", ""):
        return page("password_set.html", 400, token=token, error="The password and its repetition differ.")
    answer = set_password_with_link(token, password)
    if isinstance(answer, Response):
        return page("password_set.html", answer.status_code, token=token, error=problem_detail(answer))
    return page("message.html", title="Password set", text=f"Your password is set, {answer}: sign in with it.")


LINK_GONE = "This link is unknown, used already or expired. Ask for a new one."


# Their pages register on bp.
from services.gateway.web import (  # noqa: E402
    admin,
    alerts,
    approvals,
    cash,
    dashboard,
    payment_runs,
    payments,
    pending,
    policy,
    replenishments,
    reports,
    requisitions,
)

__all__ = [
    "admin",
    "alerts",
    "approvals",
    "bp",
    "cash",
    "dashboard",
    "page",
    "payment_runs",
    "payments",
    "pending",
    "policy",
    "problem_detail",
    "replenishments",
    "reports",
    "requisitions",
]
