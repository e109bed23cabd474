"""Sentry compatibility: the public keys that Sentry SDKs send events with."""
