from django.urls import path

from dashboard import consumers

websocket_urlpatterns = [
    path("ws/projects/<uuid:project_id>/", consumers.ProjectConsumer.as_asgi()),
]
