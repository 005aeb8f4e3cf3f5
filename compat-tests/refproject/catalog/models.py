from django.conf import settings
from django.db import models

NULLABLE = {"blank": True, "null": True}


class Category(models.Model):
    name = models.CharField(max_length=100, verbose_name="наименование")
    description = models.TextField(verbose_name="описание", **NULLABLE)

    def __str__(self):
        return self.name


class Product(models.Model):
    name = models.CharField(max_length=100, verbose_name="наименование")
    description = models.TextField(verbose_name="описание", **NULLABLE)
    image = models.ImageField(upload_to="products/", verbose_name="изображение", **NULLABLE)
    category = models.ForeignKey(
        Category,
        on_delete=models.SET_NULL,
        related_name="products",
        verbose_name="категория",
        **NULLABLE,
    )
    price = models.DecimalField(max_digits=10, decimal_places=2, verbose_name="цена за покупку")
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="дата создания")
    updated_at = models.DateTimeField(auto_now=True, verbose_name="дата последнего изменения")
    is_moderated = models.BooleanField(default=False, verbose_name="опубликован")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        related_name="products",
        verbose_name="владелец",
        **NULLABLE,
    )

    class Meta:
        permissions = [
            ("can_publish_product", "Can publish product"),
            ("can_change_description", "Can change description"),
            ("can_change_category", "Can change category"),
        ]

    def __str__(self):
        return self.name


class Version(models.Model):
    product = models.ForeignKey(
        Product, on_delete=models.CASCADE, related_name="versions", verbose_name="продукт"
    )
    version_number = models.PositiveIntegerField(verbose_name="номер версии")
    version_name = models.CharField(max_length=150, verbose_name="название версии")
    is_current = models.BooleanField(default=False, verbose_name="текущая версия")

    def __str__(self):
        return f"{self.product} v{self.version_number} {self.version_name}"
