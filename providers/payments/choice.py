"""Which payment provider the fleet talks to: ``PSP_PROVIDER`` decides."""

from __future__ import annotations

from config import Settings
from providers.payments.provider import PaymentProvider
from providers.payments.sandbox import SandboxProvider


def payment_provider(settings: Settings) -> PaymentProvider:
    """A client of the configured provider: the sandbox at ``PSP_URL``, or Stripe at
    ``STRIPE_API_BASE`` with ``STRIPE_API_KEY``."""
    if settings.psp_provider == "stripe":
        # Imported here: the SDK is a large package that a fleet on the sandbox never needs.
        from providers.payments.stripe_provider import StripeProvider

        return StripeProvider(
            api_key=settings.stripe_api_key,
            api_base=settings.stripe_api_base,
            redirect_method=settings.stripe_redirect_method,
            return_url_base=settings.gateway_url,
        )
    return SandboxProvider(settings.psp_url)
