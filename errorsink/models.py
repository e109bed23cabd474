"""Every model of the errorsink app, imported here so Django registers them.

Each part keeps its models in its own package (`errorsink/<part>/models.py`); code imports them
from there. This module is only the app's registry.
"""

from errorsink.alerts.models import (  # noqa: F401
    AlertCount,
    AlertDelivery,
    AlertFiring,
    AlertRule,
    AlertSignal,
)
from errorsink.issues.models import Issue, IssueHour, IssueSession  # noqa: F401
from errorsink.projects.models import (  # noqa: F401
    ApiKey,
    Invitation,
    Membership,
    Project,
    SessionSettings,
    SettingsChange,
    TeamChange,
    default_retention_days,
)
from errorsink.quality.models import (  # noqa: F401
    FigureCodes,
    FigureMetrics,
    FigureSessions,
    FigureStretch,
    FigureVersion,
    RollupState,
)
from errorsink.sentry.keys import SentryKey  # noqa: F401
from errorsink.sessions.models import Event, OriginalJSONField, Session  # noqa: F401
