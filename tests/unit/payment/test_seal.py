"""The enrolment seal: what the payment service shows once travels encrypted to the gateway."""

from __future__ import annotations

import json
import time

import pytest
from cryptography.fernet import Fernet

from shared.contracts.payment import (
    ENROLMENT_SEAL_TTL_SECONDS,
    SealedEnrolmentError,
    seal_enrolment,
    unseal_enrolment,
)

KEY = Fernet.generate_key().decode()
SHOWN = {"provisioning_uri": "otpauth://totp/Petty%20cash:tom?secret=JBSWY3DPEHPK3PXP", "qr_svg": "<svg/>"}


def test_a_sealed_enrolment_opens_with_the_key() -> None:
    assert unseal_enrolment(KEY, seal_enrolment(KEY, SHOWN)) == SHOWN


def test_the_sealed_form_does_not_hold_the_secret_in_the_clear() -> None:
    sealed = seal_enrolment(KEY, SHOWN)
    assert "JBSWY3DPEHPK3PXP" not in sealed
    assert "otpauth" not in sealed


def test_another_key_cannot_open_it() -> None:
    with pytest.raises(SealedEnrolmentError):
        unseal_enrolment(Fernet.generate_key().decode(), seal_enrolment(KEY, SHOWN))


def test_a_tampered_seal_is_refused() -> None:
    sealed = seal_enrolment(KEY, SHOWN)
    with pytest.raises(SealedEnrolmentError):
        unseal_enrolment(KEY, sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB"))


def test_an_old_seal_is_refused() -> None:
    old = Fernet(KEY.encode()).encrypt_at_time(
        json.dumps(SHOWN).encode(), int(time.time()) - ENROLMENT_SEAL_TTL_SECONDS - 5
    )
    with pytest.raises(SealedEnrolmentError):
        unseal_enrolment(KEY, old.decode())
