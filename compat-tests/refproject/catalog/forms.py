from django import forms
from django.forms import BaseInlineFormSet, inlineformset_factory

from catalog.models import Product, Version
from users.forms import StyleFormMixin


class ProductForm(StyleFormMixin, forms.ModelForm):
    """The owner's form. A price is never negative."""

    price = forms.DecimalField(max_digits=10, decimal_places=2, min_value=0, label="цена за покупку")

    class Meta:
        model = Product
        fields = ("name", "description", "image", "category", "price")


class ProductModeratorForm(StyleFormMixin, forms.ModelForm):
    """The moderator's form: publication, description and category only."""

    class Meta:
        model = Product
        fields = ("is_moderated", "description", "category")


class VersionForm(StyleFormMixin, forms.ModelForm):
    class Meta:
        model = Version
        fields = ("version_number", "version_name", "is_current")


class BaseVersionFormSet(BaseInlineFormSet):
    def clean(self):
        super().clean()
        current = 0
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or not form.cleaned_data:
                continue
            if self.can_delete and self._should_delete_form(form):
                continue
            if form.cleaned_data.get("is_current"):
                current += 1
        if current > 1:
            raise forms.ValidationError("Текущей может быть только одна версия.")


VersionFormSet = inlineformset_factory(
    Product, Version, form=VersionForm, formset=BaseVersionFormSet, extra=1, can_delete=True
)
