from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from errorsink.projects.api_keys import ApiKeyInvalid, api_key_create
from errorsink.projects.models import ApiKey, Project


class Command(BaseCommand):
    help = (
        "Create an API key for a project and print it. It is shown this once: only its "
        f"prefix and a hash are kept. Scopes: {', '.join(ApiKey.SCOPES)}."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--project", required=True, help="the project's id")
        parser.add_argument(
            "--scopes", required=True, help="comma-separated, e.g. errors:read,settings:read"
        )
        parser.add_argument("--name", default="", help="what the key is for, e.g. 'deploy CI'")

    def handle(self, *args, project: str, scopes: str, name: str, **options) -> None:
        try:
            target = Project.objects.get(id=project, deleted_at=None)  # a deleted one: none
        except (Project.DoesNotExist, ValidationError, ValueError):
            raise CommandError(f"no project with id {project!r}") from None
        try:
            _, plaintext = api_key_create(project=target, scopes=scopes, name=name)
        except ApiKeyInvalid as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(plaintext)
