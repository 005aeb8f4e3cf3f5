from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.shortcuts import render
from django.urls import reverse, reverse_lazy
from django.views.generic import CreateView, DeleteView, DetailView, ListView, UpdateView

from catalog.forms import ProductForm, ProductModeratorForm, VersionFormSet
from catalog.models import Product

MODERATOR_PERMISSIONS = (
    "catalog.can_publish_product",
    "catalog.can_change_description",
    "catalog.can_change_category",
)


class ProductListView(LoginRequiredMixin, ListView):
    model = Product
    paginate_by = 9
    template_name = "catalog/product_list.html"

    def get_queryset(self):
        queryset = Product.objects.select_related("category", "owner")
        user = self.request.user
        if not user.has_perm("catalog.can_publish_product"):
            queryset = queryset.filter(Q(is_moderated=True) | Q(owner=user))
        return queryset.order_by("-created_at", "-pk")


class ProductDetailView(LoginRequiredMixin, DetailView):
    model = Product
    template_name = "catalog/product_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["current_version"] = self.object.versions.filter(is_current=True).first()
        return context


class ProductCreateView(LoginRequiredMixin, CreateView):
    model = Product
    form_class = ProductForm
    template_name = "catalog/product_form.html"
    success_url = reverse_lazy("catalog:home")

    def form_valid(self, form):
        product = form.save(commit=False)
        product.owner = self.request.user
        product.save()
        self.object = product
        return super().form_valid(form)


class ProductUpdateView(LoginRequiredMixin, UpdateView):
    model = Product
    template_name = "catalog/product_form.html"

    def is_owner_or_superuser(self):
        user = self.request.user
        return user.is_superuser or self.object.owner_id == user.pk

    def get_form_class(self):
        if self.is_owner_or_superuser():
            return ProductForm
        if self.request.user.has_perms(MODERATOR_PERMISSIONS):
            return ProductModeratorForm
        raise PermissionDenied

    def get_formset(self):
        if self.request.method == "POST":
            return VersionFormSet(self.request.POST, self.request.FILES, instance=self.object)
        return VersionFormSet(instance=self.object)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        if self.is_owner_or_superuser():
            context.setdefault("formset", self.get_formset())
        return context

    def form_valid(self, form):
        if self.is_owner_or_superuser():
            formset = self.get_formset()
            if not formset.is_valid():
                return self.render_to_response(self.get_context_data(form=form, formset=formset))
            self.object = form.save()
            formset.instance = self.object
            formset.save()
            return super().form_valid(form)
        return super().form_valid(form)

    def get_success_url(self):
        return reverse("catalog:product_detail", args=[self.object.pk])


class ProductDeleteView(LoginRequiredMixin, DeleteView):
    model = Product
    template_name = "catalog/product_confirm_delete.html"
    success_url = reverse_lazy("catalog:home")

    def get_object(self, queryset=None):
        product = super().get_object(queryset)
        user = self.request.user
        if product.owner_id != user.pk and not user.has_perm("catalog.delete_product"):
            raise PermissionDenied
        return product


def contacts(request):
    if request.method == "POST":
        name = request.POST.get("name")
        phone = request.POST.get("phone")
        message = request.POST.get("message")
        print(f"{name} ({phone}): {message}")
    return render(request, "catalog/contacts.html")
