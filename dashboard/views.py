from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from errorsink.models import Project
from errorsink.projects import project_for_user, projects_for_user


def _get_project_for_user(request: HttpRequest, project_id) -> Project:
    project = project_for_user(user=request.user, project_id=project_id)
    if project is None:
        raise Http404("No such project")
    return project


@login_required
def projects(request: HttpRequest) -> HttpResponse:
    return render(
        request, "dashboard/projects.html", {"projects": projects_for_user(user=request.user)}
    )


@login_required
def project(request: HttpRequest, project_id) -> HttpResponse:
    return render(
        request, "dashboard/project.html", {"project": _get_project_for_user(request, project_id)}
    )
