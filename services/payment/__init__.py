"""The payment service: OTP-verified, retryable execution of approved requisitions."""

SERVICE = "payment"
