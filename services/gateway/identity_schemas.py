"""Schemas of the identity API: signing in, one's account, personal tokens, administration
and security events (requests and responses, as ``services.gateway.schemas`` does for the rest)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.gateway.dumping import ApiSchema
from services.gateway.schemas import OTP_CODE
from shared.contracts.money import MoneySchema
from shared.contracts.payloads import StrictBoolean
from shared.contracts.roles import ROLES

USERNAME = validate.Regexp(
    r"^[a-z0-9][a-z0-9._-]{1,63}$", error="2 to 64 lower-case letters, digits, dots, dashes or underscores."
)
CODE = validate.Regexp(r"^[A-Z0-9][A-Z0-9-]{0,31}$", error="Up to 32 capital letters, digits and dashes.")
# An address with one @ and a dot in its domain; whether it really receives mail is for the
# invitation to find out (a stricter check only refuses real addresses).
EMAIL = [
    validate.Length(max=254),
    # Whitespace spelled out: Python's \s also takes characters (U+0085, U+00A0...) that the
    # pattern, as the OpenAPI document publishes it, lets through.
    validate.Regexp(
        r"^[^@ \t\n\r\f\v\x00]+@[^@ \t\n\r\f\v\x00]+\.[^@ \t\n\r\f\v\x00]+$", error="Not a valid e-mail address."
    ),
]
STAGES = ("anonymous", "second-factor", "enrol", "signed-in")


class ChangeSchema(ApiSchema):
    """A PATCH body: any of its fields, but at least one (an empty change is a mistake)."""

    @validates_schema
    def _something(self, data: dict[str, Any], **_: Any) -> None:
        if not data:
            raise ValidationError("Send at least one field to change.")


def _required(field: fields.Field) -> fields.Field:
    field.required = True
    return field


def _text(max_length: int, *, min_length: int = 1, **kwargs: Any) -> fields.String:
    return fields.String(validate=validate.Length(min=min_length, max=max_length), **kwargs)


# -- signing in --------------------------------------------------------------------------


class SignInSchema(ApiSchema):
    """Body of ``POST /api/v1/session``."""

    username = _required(_text(254, metadata={"description": "Username or e-mail address"}))
    password = _required(_text(256))


class SecondFactorSchema(ApiSchema):
    """Body of ``POST /api/v1/session/second-factor``: a code from the authenticator, or a recovery code."""

    code = fields.String(validate=OTP_CODE, metadata={"example": "492039"})
    recovery_code = _text(64, metadata={"example": "abcde-fghjk-mnpqr-stuvw"})


class SessionSchema(ApiSchema):
    """Who this session is, how far its sign-in came, and its CSRF token."""

    signed_in = StrictBoolean(required=True)
    stage = fields.String(required=True, validate=validate.OneOf(STAGES))
    next = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "What the sign-in needs next: second-factor, enrol, or null"},
    )
    csrf_token = fields.String(
        required=True, metadata={"description": "Send as X-CSRFToken with state-changing requests"}
    )
    user = fields.Dict(required=True, allow_none=True)
    expires_at = fields.String(required=True, allow_none=True, metadata={"format": "date-time"})


class SignedOutSchema(ApiSchema):
    sessions_ended = fields.Integer(required=True)


# -- one's account -----------------------------------------------------------------------


class OwnAccountSchema(ApiSchema):
    """The signed-in user."""

    id = fields.String(required=True)
    username = fields.String(required=True)
    full_name = fields.String(required=True)
    email = fields.String(required=True, allow_none=True)
    roles = fields.List(fields.String(validate=validate.OneOf(ROLES)), required=True)
    branches = fields.List(fields.Dict(), required=True)
    regions = fields.List(fields.Dict(), required=True)
    second_factor_required = StrictBoolean(required=True)
    second_factor = fields.String(required=True, validate=validate.OneOf(("none", "pending", "active", "reset")))
    recovery_codes_left = fields.Integer(required=True)
    password_changed_at = fields.String(required=True, allow_none=True, metadata={"format": "date-time"})


class PasswordChangeSchema(ApiSchema):
    """Body of ``POST /api/v1/account/password``: the current password is the step-up."""

    current_password = _required(_text(256))
    new_password = _required(_text(256))


class StepUpSchema(ApiSchema):
    """A change of second factor: the password and a code (or a recovery code) prove it is you."""

    password = _required(_text(256))
    code = fields.String(validate=OTP_CODE)
    recovery_code = _text(64)


class RecoveryCodesSchema(ApiSchema):
    codes = fields.List(fields.String(), required=True, metadata={"description": "Shown this once; each works once"})


class TokenCreateSchema(ApiSchema):
    """Body of ``POST /api/v1/account/tokens``."""

    name = _required(_text(64))
    read_only = StrictBoolean(load_default=False)
    expires_in_days = fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=validate.Range(min=1, max=366)
    )


class TokenSchema(ApiSchema):
    id = fields.String(required=True, metadata={"format": "uuid"})
    name = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(("personal", "cli", "demo")))
    read_only = StrictBoolean(required=True)
    created_at = fields.String(required=True, metadata={"format": "date-time"})
    expires_at = fields.String(required=True, allow_none=True, metadata={"format": "date-time"})
    revoked_at = fields.String(required=True, allow_none=True, metadata={"format": "date-time"})
    active = StrictBoolean(required=True)


class NewTokenSchema(TokenSchema):
    token = fields.String(required=True, metadata={"description": "The bearer token: shown this once"})


class TokenListSchema(ApiSchema):
    items = fields.List(fields.Nested(TokenSchema), required=True)


# -- password links ------------------------------------------------------------------------


class PasswordResetRequestSchema(ApiSchema):
    """Body of ``POST /api/v1/password-reset``."""

    username = _required(_text(254, metadata={"description": "Username or e-mail address"}))


class PasswordResetAcceptedSchema(ApiSchema):
    detail = fields.String(required=True)


class PasswordLinkSchema(ApiSchema):
    """Body of ``POST /api/v1/password-link``: the token of an invitation or reset link, and the new password."""

    token = _required(_text(128))
    password = _required(_text(256))


class PasswordSetSchema(ApiSchema):
    username = fields.String(required=True)


# -- administration ------------------------------------------------------------------------


class RegionSchema(ApiSchema):
    id = fields.String(required=True, dump_only=True)
    code = _required(fields.String(validate=CODE))
    name = _required(_text(120))


class RegionEditSchema(ApiSchema):
    name = _required(_text(120))


class RegionListSchema(ApiSchema):
    items = fields.List(fields.Nested(RegionSchema), required=True)


class NullableMoney(fields.Nested):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(MoneySchema, allow_none=True, **kwargs)


class BranchEditSchema(ChangeSchema):
    """Body of ``PATCH /api/v1/admin/branches/{code}``: any of these."""

    name = _text(120)
    region = fields.String(validate=CODE, metadata={"description": "Region code"})
    head_office = StrictBoolean()
    reorder_level = NullableMoney(metadata={"description": "Below it the float is low; null clears it"})
    imprest = NullableMoney(metadata={"description": "What a replenishment tops the float up to; null clears it"})


class BranchCreateSchema(BranchEditSchema):
    """Body of ``POST /api/v1/admin/branches``."""

    code = _required(fields.String(validate=CODE))
    name = _required(_text(120))
    region = _required(fields.String(validate=CODE))


class BranchSchema(ApiSchema):
    id = fields.String(required=True)
    code = fields.String(required=True)
    name = fields.String(required=True)
    region = fields.String(required=True)
    head_office = StrictBoolean(required=True)
    reorder_level = fields.Nested(MoneySchema, required=True, allow_none=True)
    imprest = fields.Nested(MoneySchema, required=True, allow_none=True)


class BranchListSchema(ApiSchema):
    items = fields.List(fields.Nested(BranchSchema), required=True)


ROLE_LIST = fields.List(fields.String(validate=validate.OneOf(ROLES)), validate=validate.Length(max=len(ROLES)))
CODE_LIST = fields.List(fields.String(validate=CODE), validate=validate.Length(max=200))


class UserEditSchema(ChangeSchema):
    """Body of ``PATCH /api/v1/admin/users/{id}``: any of these (lists replace what is there)."""

    full_name = _text(120)
    email = fields.String(allow_none=True, validate=EMAIL)
    roles = ROLE_LIST
    branches = CODE_LIST
    regions = CODE_LIST


class UserCreateSchema(UserEditSchema):
    """Body of ``POST /api/v1/admin/users``: the invitation link goes to ``email``."""

    username = _required(fields.String(validate=USERNAME))
    full_name = _required(_text(120))
    email = _required(fields.String(validate=EMAIL))
    roles = _required(
        fields.List(fields.String(validate=validate.OneOf(ROLES)), validate=validate.Length(min=1, max=len(ROLES)))
    )


class UserSchema(ApiSchema):
    id = fields.String(required=True, metadata={"format": "uuid"})
    username = fields.String(required=True)
    full_name = fields.String(required=True)
    email = fields.String(required=True, allow_none=True)
    active = StrictBoolean(required=True)
    roles = fields.List(fields.String(), required=True)
    branches = fields.List(fields.String(), required=True)
    regions = fields.List(fields.String(), required=True)
    password_set = StrictBoolean(required=True)
    second_factor = fields.String(required=True)
    locked_until = fields.String(required=True, allow_none=True, metadata={"format": "date-time"})
    last_sign_in_at = fields.String(required=True, allow_none=True, metadata={"format": "date-time"})
    created_at = fields.String(required=True, metadata={"format": "date-time"})


class InvitedUserSchema(UserSchema):
    invitation_sent = StrictBoolean(required=True, metadata={"description": "Whether the mail went out"})
    invitation_expires_at = fields.String(required=True, metadata={"format": "date-time"})


class UserListQuerySchema(ApiSchema):
    q = _text(64)
    role = fields.String(validate=validate.OneOf(ROLES))
    branch = fields.String(validate=CODE)
    active = fields.Boolean(truthy={"true"}, falsy={"false"})  # a query string's words
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=1_000_000))


class UserListSchema(ApiSchema):
    items = fields.List(fields.Nested(UserSchema), required=True)
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)


class LinkSentSchema(ApiSchema):
    sent = StrictBoolean(required=True, metadata={"description": "Whether the mail went out"})
    expires_at = fields.String(required=True, metadata={"format": "date-time"})


class RuleSchema(ApiSchema):
    action = fields.String(required=True)
    roles = fields.List(fields.String(), required=True)
    scope = fields.String(required=True)


class PermissionTableSchema(ApiSchema):
    roles = fields.List(fields.String(), required=True)
    rules = fields.List(fields.Nested(RuleSchema), required=True)


# -- security events -----------------------------------------------------------------------


class SecurityEventQuerySchema(ApiSchema):
    type = _text(48)
    user_id = fields.UUID()
    since = fields.AwareDateTime()
    before_id = fields.Integer(validate=validate.Range(min=1))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=200))


class SecurityEventSchema(ApiSchema):
    id = fields.Integer(required=True)
    at = fields.String(required=True, metadata={"format": "date-time"})
    type = fields.String(required=True)
    actor = fields.Dict(required=True, allow_none=True)
    subject = fields.Dict(required=True, allow_none=True)
    address = fields.String(required=True, allow_none=True)
    user_agent = fields.String(required=True, allow_none=True)
    detail = fields.Dict(required=True)


class SecurityEventListSchema(ApiSchema):
    items = fields.List(fields.Nested(SecurityEventSchema), required=True)


# Rules across fields, written into the OpenAPI components (see api/__init__.py).
IDENTITY_COMPONENT_RULES: dict[type[Schema], dict[str, Any]] = {
    BranchEditSchema: {"minProperties": 1},
    UserEditSchema: {"minProperties": 1},
}
