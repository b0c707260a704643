"""Helpers of the list pages (scans, watchlists, alerts): the query's errors in words, page
numbers, and links to pages that may not exist yet."""

from __future__ import annotations

from django import forms
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django_filters import FilterSet
from rest_framework.exceptions import ValidationError as ApiValidationError

PAGE_SIZE = 25


class BadQuery(Exception):
    """The query string cannot be answered; `messages` say why, one line per problem."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


class PageForm(forms.Form):
    page = forms.IntegerField(min_value=1, required=False)


def form_messages(errors: dict[str, list[str]]) -> list[str]:
    """A form's or serializer's errors as lines naming the field ("state: Select a valid...")."""
    lines = []
    for field, messages in errors.items():
        for message in messages:
            lines.append(str(message) if field == "__all__" else f"{field}: {message}")
    return lines


def any_choice(form: forms.Form) -> forms.Form:
    """Each select's empty choice reads "Any" (django-filter's default is a row of dashes) and a
    select without one gets it: an empty filter filters nothing, as in the API."""
    for field in form.fields.values():
        if isinstance(field, forms.ChoiceField):
            choices = [(v, label) for v, label in field.choices if v not in ("", None)]
            if getattr(field, "empty_label", None) is not None:
                field.empty_label = "Any"  # django-filter's field adds its empty choice itself
                field.choices = choices
            else:
                field.choices = [("", "Any"), *choices]
    return form


def filtered(filterset: FilterSet) -> QuerySet:
    """The filter set's rows, or BadQuery naming every bad parameter. A filter that refuses its
    value while filtering (the API's `watchlist`, with DRF's ValidationError) counts as bad too."""
    if not filterset.is_valid():
        raise BadQuery(form_messages(filterset.errors))
    try:
        return filterset.qs
    except ApiValidationError as error:
        detail = error.detail if isinstance(error.detail, dict) else {"query": error.detail}
        raise BadQuery(form_messages({k: list(v) for k, v in detail.items()})) from None


def page_of(request_get: object, rows: QuerySet, per_page: int = PAGE_SIZE) -> Page:
    """Page `page` (1-based; past the end: the last page) of the rows; BadQuery for a page that
    is not a whole number from 1."""
    form = PageForm(request_get)
    if not form.is_valid():
        raise BadQuery(form_messages(form.errors))
    return Paginator(rows, per_page).get_page(form.cleaned_data.get("page") or 1)
