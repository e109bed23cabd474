from django.urls import path

import dashboard.converters  # noqa: F401  (registers <session_id:...>)
from dashboard import consumers

websocket_urlpatterns = [
    path("ws/projects/<uuid:project_id>/", consumers.ProjectConsumer.as_asgi()),
    path("ws/projects/<uuid:project_id>/issues/<int:issue_id>/", consumers.IssueConsumer.as_asgi()),
    path(
        "ws/projects/<uuid:project_id>/sessions/<session_id:session_id>/",
        consumers.SessionConsumer.as_asgi(),
    ),
]
