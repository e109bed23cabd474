"""Live pushes to the dashboard: one group per project, authorised on connect."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from errorsink.projects import group_name, project_for_user


class ProjectConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        project_id = self.scope["url_route"]["kwargs"]["project_id"]
        project = await database_sync_to_async(project_for_user)(
            user=self.scope["user"], project_id=project_id
        )
        if project is None:
            await self.close(code=4404)
            return
        self.group = group_name(project.id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def events_stored(self, message: dict) -> None:
        await self.send_json({"type": "events.stored", "events": message.get("events", [])})
