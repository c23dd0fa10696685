"""Slide-level models: MIL aggregators with classification, regression and survival heads.

Reads feature files (Contract 3) and a slide table (Contract 4); ``wsi-ssl mil train`` writes a
run dir whose fold models :func:`wsi_ssl.mil.loading.load_mil_model` loads without training code.
"""
