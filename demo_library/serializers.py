"""DRF serializers behind the demo's model-backed tools (see mcp_tools.py)."""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from rest_framework import serializers

from .models import Author, Book, Loan


def visible_books(user: Any) -> Any:
    """Catalogue books (no owner) plus the caller's own; superusers see every book."""
    books = Book.objects.select_related("author")
    if getattr(user, "is_superuser", False):
        return books
    if not getattr(user, "is_authenticated", False):
        return books.filter(owner__isnull=True)
    return books.filter(Q(owner__isnull=True) | Q(owner=user))


def own_loans(user: Any) -> Any:
    """A caller's own loans; superusers see all of them."""
    loans = Loan.objects.select_related("book")
    if getattr(user, "is_superuser", False):
        return loans
    return loans.filter(borrower_id=getattr(user, "pk", None))


class AuthorSerializer(serializers.ModelSerializer[Author]):
    class Meta:
        model = Author
        fields = ["id", "name", "born"]
        extra_kwargs = {
            "name": {"help_text": "The author's full name."},
            "born": {"help_text": "Year of birth.", "min_value": -3000, "max_value": 2100},
        }


class BookSerializer(serializers.ModelSerializer[Book]):
    author_name = serializers.CharField(source="author.name", read_only=True)
    # Books added through MCP belong to the caller: only they (and superusers) see them.
    owner = serializers.HiddenField(default=serializers.CurrentUserDefault())

    class Meta:
        model = Book
        fields = ["id", "title", "author", "author_name", "published", "genre", "isbn", "owner"]
        extra_kwargs = {
            "title": {"help_text": "The book's title."},
            "author": {"help_text": "Id of the author (see author_list)."},
            "published": {"help_text": "Year of publication.", "min_value": -3000, "max_value": 2100},
            "isbn": {"help_text": "ISBN-10 or ISBN-13, digits and hyphens."},
        }


class LoanSerializer(serializers.ModelSerializer[Loan]):
    borrower = serializers.HiddenField(default=serializers.CurrentUserDefault())
    book_title = serializers.CharField(source="book.title", read_only=True)

    class Meta:
        model = Loan
        fields = ["id", "book", "book_title", "borrower", "borrowed", "returned"]
        extra_kwargs = {
            "book": {"help_text": "Id of the book to borrow."},
            "returned": {"help_text": "Date the book came back (set it to return the book)."},
        }

    def validate_book(self, book: Book) -> Book:
        # The related field accepts any book id; only books the caller can see may be borrowed.
        user = self.context["request"].user
        if not visible_books(user).filter(pk=book.pk).exists():
            raise serializers.ValidationError(f'Invalid pk "{book.pk}" - object does not exist.')
        return book
