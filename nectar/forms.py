"""What every form of Nectar shares: text that cannot be stored is a form error, not a server error."""

from __future__ import annotations

from nectar.text import data_text_problem


class TextSafeFormMixin:
    """Refuse NUL characters and lone surrogates anywhere in a form's cleaned values (JSON fields included)."""

    def clean(self):
        cleaned = super().clean()
        for name, value in list((cleaned or {}).items()):
            found = data_text_problem(value, name)
            if found is not None:
                self.add_error(name if name in self.fields else None, found[1])
        return cleaned
