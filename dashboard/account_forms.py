"""Forms for making an account: through an invitation (its address is fixed) or, where an
operator opened sign-up, with an address of one's own."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm


class InvitedSignupForm(UserCreationForm):
    """A username and a password; the address is the invitation's."""

    def __init__(self, *args, email: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.email = email

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username",)

    def save(self, commit: bool = True):
        user = super().save(commit=False)
        user.email = self.email
        if commit:
            user.save()
        return user


class OpenSignupForm(UserCreationForm):
    email = forms.EmailField(required=True)

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")
