from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from errorsink.projects.services import project_create


class Command(BaseCommand):
    help = "Create a project and print its id. --owner makes an existing user its owner."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name")
        parser.add_argument("--owner", help="username of the owner (must exist)")

    def handle(self, *args, name: str, owner: str | None, **options) -> None:
        name = name.strip()
        if not name:
            raise CommandError("NAME must not be empty")
        user = None
        if owner:
            user = get_user_model().objects.filter(username=owner).first()
            if user is None:
                raise CommandError(f"no user named {owner!r}; create it first (createsuperuser)")
        project = project_create(name=name, owner=user)
        self.stdout.write(str(project.id))
