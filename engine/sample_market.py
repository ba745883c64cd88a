"""A synthetic online shop with a documented ground truth.

The market is generated from the demand model of DESIGN.md, so that every
later stage (segments, co-purchase, bundles, willingness to pay) can be tested
against known answers:

* 5 hidden customer segments, each liking a few of 12 categories;
* a visit process (Poisson visits per month, heterogeneous rate, seasonal);
* at each visit a few products are *considered*, drawn from the segment's
  taste (softmax of segment affinity plus the log seasonal index);
* a considered product is bought when the lognormal willingness to pay
  w = exp(mu[s, i] + sigma[i] * eps), eps ~ N(0, 1) drawn per occasion, is at
  least the current price (list price less any promotion that week);
* planted groups (pairs and triples) in two regimes. At a visit of one of the
  group's fan segments the visitor *needs* the group with probability
  ``need_rate``: every member is considered in that visit (joint interest).
  *Joint interest* groups are then bought member by member, each when its own
  willingness to pay reaches its price: wanting both is the only reason they
  sell together, so a bundle discount wins visitors who value the set but not
  each part at its price. *Synergy* groups are worth (1 + ``synergy``) times
  the sum of their members' willingness to pay when bought whole, so the set
  sells whole when that pays, and a promotion on one member raises the sales
  of the others (the cross-price response that tells the regimes apart);
* planted substitutes: when one of a substitute pair is considered the other
  usually is too, and at most one of the two is bought (largest surplus);
* a little additive dirt (returns, cancelled orders, postage lines, guest
  lines without a customer) that an importer must set aside; the clean lines
  are exactly the simulated purchases.

Run ``python -m engine.sample_market --out sample_data --seed 7``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from engine.columns import (
    CATEGORY,
    COST,
    COUNTRY,
    CUSTOMER_ID,
    DESCRIPTION,
    IN_STOCK,
    NAME,
    ORDER_ID,
    PRICE,
    PRODUCT_ID,
    QUANTITY,
    TIMESTAMP,
    UNIT_PRICE,
)

log = logging.getLogger(__name__)

YEAR = 2025
N_WEEKS = 53  # week index = (day of year - 1) // 7
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
ORDER_LINE_FILE_COLUMNS = (
    ORDER_ID,
    CUSTOMER_ID,
    PRODUCT_ID,
    QUANTITY,
    UNIT_PRICE,
    TIMESTAMP,
    NAME,
)
PRODUCT_FILE_COLUMNS = (PRODUCT_ID, NAME, DESCRIPTION, CATEGORY, PRICE, COST, IN_STOCK)
CUSTOMER_FILE_COLUMNS = (CUSTOMER_ID, COUNTRY, "signup_date")
POSTAGE_ID = "POST"

# ---------------------------------------------------------------------------
# catalogue vocabulary

# category -> (low, high) list price, seasonal index by month (Jan..Dec, rescaled to mean 1)
CATEGORIES: dict[str, tuple[tuple[float, float], tuple[float, ...]]] = {
    "Coffee": ((4, 40), (1.2, 1.1, 1.0, 0.9, 0.9, 0.8, 0.8, 0.8, 0.9, 1.0, 1.2, 1.4)),
    "Tea": ((3, 25), (1.4, 1.3, 1.1, 0.9, 0.8, 0.7, 0.7, 0.7, 0.9, 1.1, 1.2, 1.3)),
    "Kitchen": ((6, 90), (1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 1.0, 1.0, 1.3, 1.5)),
    "Baking": ((3, 45), (1.0, 0.9, 1.0, 1.1, 0.8, 0.7, 0.7, 0.7, 0.9, 1.1, 1.4, 1.7)),
    "Home Fragrance": ((5, 40), (1.0, 0.9, 0.8, 0.7, 0.7, 0.6, 0.6, 0.7, 0.9, 1.3, 1.6, 2.0)),
    "Stationery": ((2, 30), (1.2, 1.0, 0.9, 0.8, 0.8, 0.8, 0.9, 1.5, 1.6, 0.9, 0.8, 0.9)),
    "Garden": ((4, 80), (0.4, 0.6, 1.4, 2.2, 2.3, 1.8, 1.2, 0.9, 0.8, 0.6, 0.5, 0.4)),
    "Kids Toys": ((5, 60), (0.7, 0.7, 0.7, 0.8, 0.7, 0.7, 0.8, 0.8, 0.8, 1.0, 2.0, 3.0)),
    "Bath & Body": ((3, 35), (1.0, 1.2, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 1.0, 1.3, 1.6)),
    "Pet Supplies": ((3, 50), (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.1)),
    "Audio": ((15, 120), (0.9, 0.8, 0.8, 0.8, 0.8, 0.9, 0.9, 0.9, 0.9, 1.0, 1.6, 1.8)),
    "Outdoor": ((8, 120), (0.5, 0.5, 0.8, 1.1, 1.5, 1.8, 1.9, 1.6, 1.0, 0.7, 0.6, 0.6)),
}

# category -> (materials/styles, [(item, what it is for), ...])
VOCAB: dict[str, tuple[tuple[str, ...], tuple[tuple[str, str], ...]]] = {
    "Coffee": (
        ("Colombian", "Ethiopian", "Brazilian", "Guatemalan", "Kenyan", "Sumatran"),
        (
            ("Single Origin Whole Beans, 250 g", "brewing a bright cup at home"),
            ("Medium Roast Ground Coffee, 500 g", "everyday filter and cafetiere brewing"),
            ("Dark Roast Espresso Pods, 20 pcs", "quick espresso in capsule machines"),
            ("Decaf Coffee Beans, 250 g", "a full-flavoured cup in the evening"),
            ("Cold Brew Coffee Bags, 10 pcs", "smooth iced coffee made overnight"),
            ("Coffee Sampler Box, 4 x 100 g", "tasting several origins side by side"),
        ),
    ),
    "Tea": (
        ("Darjeeling", "Assam", "Ceylon", "Jasmine", "Moroccan Mint", "Rooibos"),
        (
            ("Loose Leaf Tea, 100 g", "brewing a fragrant pot of tea"),
            ("Pyramid Tea Bags, 20 pcs", "a quick cup with whole-leaf flavour"),
            ("Tea Tin Gift Set", "giving a tea lover a selection of blends"),
            ("Iced Tea Blend, 150 g", "cold-brewed tea on warm days"),
        ),
    ),
    "Kitchen": (
        ("Stainless Steel", "Cast Iron", "Enamel", "Oak", "Marble", "Copper"),
        (
            ("Saucepan, 18 cm", "simmering sauces and soups"),
            ("Mixing Bowl Set", "preparing dough, salads and batters"),
            ("Utensil Holder", "keeping spoons and spatulas to hand"),
            ("Serving Tray", "carrying and presenting food at the table"),
            ("Pestle and Mortar", "grinding spices and making pastes"),
            ("Salt and Pepper Mills", "seasoning dishes freshly at the table"),
        ),
    ),
    "Baking": (
        ("Non-Stick", "Carbon Steel", "Silicone", "Aluminium", "Ceramic", "Enamel"),
        (
            ("Loaf Tin, 900 g", "baking sandwich loaves and cakes"),
            ("Muffin Tray, 12 cups", "baking muffins and cupcakes"),
            ("Round Cake Tin, 20 cm", "baking sponges and celebration cakes"),
            ("Cooling Rack", "letting bakes cool evenly"),
            ("Pie Dish, 24 cm", "baking fruit pies and quiches"),
        ),
    ),
    "Home Fragrance": (
        ("Fig & Cassis", "Sea Salt", "Sandalwood", "Orange Blossom", "Cedar", "Vanilla"),
        (
            ("Scented Jar Candle, 300 g", "filling a room with a warm scent"),
            ("Room Spray, 100 ml", "refreshing a room in seconds"),
            ("Wax Melts, 6 pcs", "scenting a room with a wax burner"),
            ("Incense Sticks, 30 pcs", "a calm, lingering fragrance"),
        ),
    ),
    "Stationery": (
        ("Linen", "Kraft", "Recycled", "Leather", "Floral", "Navy"),
        (
            ("A5 Lined Notebook", "notes, journals and lists"),
            ("Weekly Planner", "planning the week at a glance"),
            ("Greeting Card Set, 10 pcs", "writing birthday and thank-you notes"),
            ("Pencil Case", "keeping pens and pencils together"),
            ("Desk Organiser", "tidying pens, clips and notes on a desk"),
        ),
    ),
    "Garden": (
        ("Galvanised", "Terracotta", "Bamboo", "Ash-Handled", "Rattan", "Zinc"),
        (
            ("Plant Pot, 25 cm", "growing herbs and flowers on a patio"),
            ("Hand Trowel", "planting bulbs and seedlings"),
            ("Pruning Shears", "cutting back shrubs and roses"),
            ("Bird Feeder", "feeding garden birds through the year"),
            ("Raised Bed Kit", "growing vegetables in a small garden"),
        ),
    ),
    "Kids Toys": (
        ("Wooden", "Plush", "Magnetic", "Rainbow", "Jungle", "Pirate"),
        (
            ("Puzzle, 48 pcs", "quiet problem-solving play for ages 4+"),
            ("Stacking Toy", "building hand-eye coordination in toddlers"),
            ("Play Kitchen Set", "pretend cooking games"),
            ("Activity Cube", "busy play for little hands"),
            ("Ride-On Toy", "active indoor and outdoor play"),
        ),
    ),
    "Bath & Body": (
        ("Lavender", "Eucalyptus", "Rose", "Coconut", "Citrus", "Oatmeal"),
        (
            ("Body Lotion, 250 ml", "keeping skin soft after a shower"),
            ("Hand Cream, 75 ml", "soothing dry hands"),
            ("Bath Salts, 500 g", "a relaxing soak at the end of the day"),
            ("Soap Bar Trio", "gentle everyday washing"),
            ("Body Scrub, 200 g", "exfoliating rough skin"),
        ),
    ),
    "Pet Supplies": (
        ("Tweed", "Corduroy", "Waterproof", "Reflective", "Woven", "Fleece"),
        (
            ("Dog Bed, medium", "a warm place for a dog to sleep"),
            ("Cat Scratching Post", "saving furniture from claws"),
            ("Dog Collar", "everyday walks and ID tags"),
            ("Pet Blanket", "protecting sofas and car seats from fur"),
            ("Chew Toy", "keeping dogs busy and teeth clean"),
        ),
    ),
    "Audio": (
        ("Matte Black", "Walnut", "Sand", "Graphite", "Sage", "Silver"),
        (
            ("Over-Ear Headphones", "immersive music at home and on the move"),
            ("Bookshelf Speaker", "room-filling sound from a small shelf speaker"),
            ("DAB Radio", "news and music in the kitchen"),
            ("Headphone Stand", "keeping headphones tidy on a desk"),
        ),
    ),
    "Outdoor": (
        ("Lightweight", "Ripstop", "Insulated", "Packable", "Waterproof", "Forest Green"),
        (
            ("Day Rucksack, 25 L", "day hikes and city commuting"),
            ("Camping Chair", "sitting comfortably at camp or the beach"),
            ("Picnic Blanket", "picnics in the park"),
            ("Insulated Water Bottle, 750 ml", "keeping drinks cold on long walks"),
            ("Trekking Poles, pair", "steadier steps on steep trails"),
        ),
    ),
}

# Planted products: (key, category, name, description, price).
PLANTED: tuple[tuple[str, str, str, str, float], ...] = (
    # complement pairs
    (
        "espresso",
        "Coffee",
        "Dark Roast Espresso Beans, 1 kg",
        "Whole beans roasted for rich espresso with a thick crema.",
        21.99,
    ),
    (
        "frother",
        "Kitchen",
        "Electric Milk Frother, stainless steel",
        "Froths hot or cold milk for lattes and cappuccinos.",
        34.99,
    ),
    (
        "french_press",
        "Coffee",
        "Glass French Press, 1 L",
        "Brews full-bodied coffee for four with a steel mesh plunger.",
        24.99,
    ),
    (
        "coarse_ground",
        "Coffee",
        "Coarse Ground Coffee for French Press, 500 g",
        "Coffee ground coarse for cafetieres and cold brew.",
        9.99,
    ),
    (
        "green_tea",
        "Tea",
        "Loose Leaf Sencha Green Tea, 100 g",
        "A grassy Japanese green tea for brewing by the pot.",
        8.49,
    ),
    (
        "infuser",
        "Tea",
        "Glass Tea Infuser Mug, 350 ml",
        "A mug with a removable infuser for brewing loose leaf tea.",
        14.99,
    ),
    (
        "sourdough_kit",
        "Baking",
        "Sourdough Starter Kit",
        "Dried starter culture, jar and guide for baking sourdough bread.",
        19.99,
    ),
    (
        "banneton",
        "Baking",
        "Rattan Proofing Basket, 22 cm",
        "A banneton that shapes and proves round sourdough loaves.",
        16.49,
    ),
    (
        "chef_knife",
        "Kitchen",
        "Forged Chef's Knife, 20 cm",
        "A balanced all-purpose knife for chopping and slicing.",
        54.99,
    ),
    (
        "cutting_board",
        "Kitchen",
        "End-Grain Bamboo Cutting Board",
        "A large board that is kind to knife edges.",
        29.99,
    ),
    (
        "watering_can",
        "Garden",
        "Galvanised Watering Can, 9 L",
        "A classic can with a brass rose for watering seedlings.",
        27.99,
    ),
    (
        "tomato_seeds",
        "Garden",
        "Heirloom Tomato Seed Collection",
        "Six tomato varieties to sow indoors in spring.",
        7.99,
    ),
    (
        "dog_lead",
        "Pet Supplies",
        "Reflective Dog Lead, 1.5 m",
        "A strong padded lead with reflective stitching for evening walks.",
        15.99,
    ),
    (
        "poo_bags",
        "Pet Supplies",
        "Compostable Dog Poo Bags, 120 pcs",
        "Strong compostable bags with a lead-mounted dispenser.",
        6.99,
    ),
    (
        "colouring_book",
        "Stationery",
        "Animal Colouring Book for Kids",
        "Forty animal pictures to colour in for ages 3 to 7.",
        5.99,
    ),
    (
        "crayons",
        "Kids Toys",
        "Chunky Wax Crayon Set, 24 colours",
        "Easy-grip crayons for small hands.",
        6.49,
    ),
    (
        "bath_bombs",
        "Bath & Body",
        "Lavender Bath Bomb Gift Set, 6 pcs",
        "Fizzing bath bombs with lavender oil for a relaxing soak.",
        16.99,
    ),
    (
        "bath_candle",
        "Home Fragrance",
        "Calming Bath Time Candle, 200 g",
        "A soy candle scented with chamomile for the bathroom.",
        18.99,
    ),
    (
        "bt_speaker",
        "Audio",
        "Portable Bluetooth Speaker, waterproof",
        "A compact speaker with 12-hour battery for music anywhere.",
        59.99,
    ),
    (
        "speaker_case",
        "Audio",
        "Hard Carry Case for Portable Speaker",
        "A padded zip case that protects a portable speaker.",
        14.99,
    ),
    # triples
    (
        "tent",
        "Outdoor",
        "Two-Person Dome Tent",
        "A quick-pitch waterproof tent for weekend camping.",
        89.99,
    ),
    (
        "sleeping_bag",
        "Outdoor",
        "Three-Season Sleeping Bag",
        "A warm mummy sleeping bag rated to 2 degrees.",
        49.99,
    ),
    (
        "lantern",
        "Outdoor",
        "Rechargeable LED Camping Lantern",
        "A bright dimmable lantern for the tent and campsite.",
        24.99,
    ),
    (
        "watercolour_set",
        "Stationery",
        "Watercolour Paint Set, 24 half pans",
        "Vivid watercolour paints in a travel tin.",
        22.99,
    ),
    (
        "watercolour_paper",
        "Stationery",
        "Watercolour Paper Pad, A4, 300 gsm",
        "Heavy cold-pressed paper that does not buckle when wet.",
        12.99,
    ),
    (
        "brushes",
        "Stationery",
        "Watercolour Brush Set, 8 pcs",
        "Round and flat synthetic brushes for watercolour painting.",
        11.49,
    ),
    (
        "diffuser",
        "Home Fragrance",
        "Reed Diffuser, white tea, 100 ml",
        "A glass bottle diffuser with rattan reeds for lasting scent.",
        24.99,
    ),
    (
        "diffuser_refill",
        "Home Fragrance",
        "Reed Diffuser Refill Oil, white tea, 200 ml",
        "Refill oil and fresh reeds for a reed diffuser.",
        16.99,
    ),
    (
        "essential_oils",
        "Bath & Body",
        "Essential Oil Set, 6 x 10 ml",
        "Lavender, eucalyptus and four more oils for diffusers and baths.",
        19.99,
    ),
    # substitute pairs
    (
        "dripper_a",
        "Coffee",
        "Ceramic Pour-Over Coffee Dripper, white",
        "A cone dripper for brewing pour-over coffee by hand.",
        19.99,
    ),
    (
        "dripper_b",
        "Coffee",
        "Porcelain Pour-Over Coffee Dripper, white",
        "A cone dripper for brewing pour-over coffee by hand.",
        21.99,
    ),
    (
        "kettle_a",
        "Kitchen",
        "Stainless Steel Electric Kettle, 1.7 L",
        "A fast-boil cordless kettle for tea and coffee.",
        39.99,
    ),
    (
        "kettle_b",
        "Kitchen",
        "Brushed Steel Electric Kettle, 1.7 L",
        "A fast-boil cordless kettle for tea and coffee.",
        42.99,
    ),
    (
        "mat_a",
        "Baking",
        "Silicone Baking Mat, 40 x 30 cm",
        "A reusable non-stick mat that replaces baking paper.",
        9.99,
    ),
    (
        "mat_b",
        "Baking",
        "Non-Stick Silicone Baking Mat, 40 x 30 cm",
        "A reusable non-stick mat that replaces baking paper.",
        10.99,
    ),
    (
        "candle_a",
        "Home Fragrance",
        "Lavender Soy Wax Candle, 200 g",
        "A hand-poured lavender candle with a cotton wick.",
        17.99,
    ),
    (
        "candle_b",
        "Home Fragrance",
        "Lavender Beeswax Candle, 200 g",
        "A hand-poured lavender candle with a cotton wick.",
        19.99,
    ),
    (
        "notebook_a",
        "Stationery",
        "A5 Dotted Notebook, black",
        "A hardback notebook for journaling and sketches.",
        12.99,
    ),
    (
        "notebook_b",
        "Stationery",
        "A5 Dot Grid Notebook, black",
        "A hardback notebook for journaling and sketches.",
        13.49,
    ),
    (
        "earbuds_a",
        "Audio",
        "Wireless Earbuds, black",
        "Bluetooth earbuds with a charging case for music on the go.",
        49.99,
    ),
    (
        "earbuds_b",
        "Audio",
        "True Wireless Earbuds, black",
        "Bluetooth earbuds with a charging case for music on the go.",
        54.99,
    ),
    (
        "blocks_a",
        "Kids Toys",
        "Wooden Building Blocks, 50 pcs",
        "Colourful wooden blocks for building and stacking, ages 1+.",
        24.99,
    ),
    (
        "blocks_b",
        "Kids Toys",
        "Beech Wood Building Blocks, 50 pcs",
        "Colourful wooden blocks for building and stacking, ages 1+.",
        27.99,
    ),
    (
        "gel_a",
        "Bath & Body",
        "Oat Milk Shower Gel, 250 ml",
        "A gentle creamy shower gel for sensitive skin.",
        7.99,
    ),
    (
        "gel_b",
        "Bath & Body",
        "Oat & Honey Shower Gel, 250 ml",
        "A gentle creamy shower gel for sensitive skin.",
        8.49,
    ),
)

# (members, segments whose taste they are in); REGIMES below says which groups
# have synergy (the rest: joint interest only)
PLANTED_PAIRS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("espresso", "frother"), ("coffee lovers", "home cooks")),
    (("french_press", "coarse_ground"), ("coffee lovers",)),
    (("green_tea", "infuser"), ("wellness", "coffee lovers")),
    (("sourdough_kit", "banneton"), ("home cooks",)),
    (("chef_knife", "cutting_board"), ("home cooks",)),
    (("watering_can", "tomato_seeds"), ("gardeners",)),
    (("dog_lead", "poo_bags"), ("gardeners",)),
    (("colouring_book", "crayons"), ("parents",)),
    (("bath_bombs", "bath_candle"), ("wellness",)),
    (("bt_speaker", "speaker_case"), ("coffee lovers", "gardeners")),
)
PLANTED_TRIPLES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("tent", "sleeping_bag", "lantern"), ("gardeners",)),
    (("watercolour_set", "watercolour_paper", "brushes"), ("parents",)),
    (("diffuser", "diffuser_refill", "essential_oils"), ("wellness",)),
)
SYNERGY = "synergy"
JOINT_INTEREST = "joint_interest"
# the set is worth more whole: a frother needs an espresso, a refill a diffuser
SYNERGY_GROUPS = frozenset({
    ("espresso", "frother"), ("french_press", "coarse_ground"), ("sourdough_kit", "banneton"),
    ("watering_can", "tomato_seeds"), ("bt_speaker", "speaker_case"),
    ("diffuser", "diffuser_refill", "essential_oils"),
})


def regime(members: tuple[str, ...]) -> str:
    return SYNERGY if tuple(members) in SYNERGY_GROUPS else JOINT_INTEREST


SUBSTITUTES: tuple[tuple[str, str], ...] = tuple(
    (f"{k}_a", f"{k}_b")
    for k in ("dripper", "kettle", "mat", "candle", "notebook", "earbuds", "blocks", "gel")
)

# segment -> (liked categories, strongest first; share of customers)
SEGMENTS: dict[str, tuple[tuple[str, ...], float]] = {
    "home cooks": (("Kitchen", "Baking", "Coffee"), 0.24),
    "coffee lovers": (("Coffee", "Tea", "Audio"), 0.18),
    "parents": (("Kids Toys", "Stationery", "Bath & Body"), 0.22),
    "gardeners": (("Garden", "Outdoor", "Pet Supplies"), 0.20),
    "wellness": (("Bath & Body", "Home Fragrance", "Tea"), 0.16),
}

COUNTRIES = (
    ("United Kingdom", 0.80),
    ("Germany", 0.05),
    ("France", 0.05),
    ("Ireland", 0.04),
    ("Netherlands", 0.03),
    ("Spain", 0.03),
)

ADJECTIVES = ("Classic", "Everyday", "Premium", "Compact", "Handmade", "Nordic", "Heritage")


@dataclass(frozen=True)
class MarketConfig:
    """Generation parameters; every field is written to ground_truth.json."""

    n_products: int = 300
    n_customers: int = 2000
    visits_per_month: float = 0.5  # mean Poisson visit rate per customer
    visit_rate_shape: float = 1.5  # gamma shape of the per-customer rate (heterogeneity)
    considered_per_visit: float = 2.2  # 1 + Poisson(this) products considered per visit
    affinity_liked: tuple[float, float, float] = (2.2, 1.7, 1.3)  # log weight by liked rank
    affinity_product_sd: float = 0.6  # per-product popularity noise (log weight)
    take_rate_liked: float = 0.6  # P(w >= list price) in a liked category
    take_rate_other: float = 0.3
    take_rate_logit_sd: float = 0.4  # spread of take rates across products
    planted_affinity: float = 0.3  # extra log weight of planted products in their segments
    joint_take_rate: float = 0.45  # P(w >= list) of joint-interest members in fan segments
    synergy_take_rate: float = 0.35  # P(w >= list) of synergy members in fan segments
    need_rate: float = 0.08  # P(a fan segment's visit needs the group: all members considered)
    synergy: float = 0.4  # a synergy group bought whole is worth this much more
    substitute_prob: float = 0.9  # the other substitute is considered too
    sigma_range: tuple[float, float] = (0.25, 0.6)
    cost_share_range: tuple[float, float] = (0.35, 0.7)
    in_stock_share: float = 0.95
    promo_share: float = 0.2  # share of product-weeks on promotion
    promo_discounts: tuple[float, ...] = (0.1, 0.15, 0.2, 0.25, 0.3)
    quantity_probs: tuple[float, float, float] = (0.82, 0.13, 0.05)  # quantity 1, 2, 3
    return_share: float = 0.01  # share of lines later returned
    n_cancelled_orders: int = 12
    n_postage_lines: int = 40
    n_guest_orders: int = 6  # orders without a customer id


@dataclass(frozen=True)
class Market:
    """The generated shop: three frames as written to CSV, and the ground truth."""

    order_lines: pd.DataFrame
    products: pd.DataFrame
    customers: pd.DataFrame
    ground_truth: dict = field(repr=False)


# ---------------------------------------------------------------------------
# catalogue


def _round_price(x: np.ndarray) -> np.ndarray:
    """Shop-style prices: whole pounds less a penny (.99) or .49 below 10."""
    x = np.asarray(x, dtype=float)
    small = np.floor(x) + np.where(x - np.floor(x) < 0.5, -0.01, 0.49)
    large = np.round(x) - 0.01
    return np.round(np.maximum(np.where(x < 10, small, large), 0.99), 2)


def _make_products(cfg: MarketConfig, rng: np.random.Generator) -> pd.DataFrame:
    cats = list(CATEGORIES)
    per_cat = np.full(len(cats), cfg.n_products // len(cats))
    per_cat[: cfg.n_products - per_cat.sum()] += 1
    rows = []
    planted_by_cat = {c: [p for p in PLANTED if p[1] == c] for c in cats}
    for c, n in zip(cats, per_cat, strict=True):
        for key, _, name, desc, price in planted_by_cat[c]:
            rows.append((key, c, name, desc, price))
        materials, items = VOCAB[c]
        # skip "Insulated Insulated Water Bottle"-style repeats of the material in the item
        combos = [
            (a, m, it)
            for a in ADJECTIVES
            for m in materials
            for it in items
            if not set(m.lower().split()) & set(it[0].lower().split())
        ]
        pick = rng.choice(len(combos), size=n - len(planted_by_cat[c]), replace=False)
        (lo, hi) = CATEGORIES[c][0]
        for k in pick:
            adj, mat, (item, purpose) = combos[k]
            name = f"{adj} {mat} {item}"
            desc = f"{adj} {mat} {item.split(',')[0].lower()} for {purpose}."
            price = float(_round_price(np.exp(rng.uniform(np.log(lo), np.log(hi)))))
            rows.append(("", c, name, desc, price))
    df = pd.DataFrame(rows, columns=["key", CATEGORY, NAME, DESCRIPTION, PRICE])
    df[PRODUCT_ID] = [f"P{i + 1:04d}" for i in range(len(df))]
    share = rng.uniform(*cfg.cost_share_range, size=len(df))
    df[COST] = np.round(df[PRICE].to_numpy() * share, 2)
    df[IN_STOCK] = rng.random(len(df)) < cfg.in_stock_share
    planted = df["key"] != ""
    df.loc[planted, IN_STOCK] = True  # planted products are always orderable
    return df


# ---------------------------------------------------------------------------
# tastes and willingness to pay


def _seasonal_index() -> np.ndarray:
    idx = np.array([CATEGORIES[c][1] for c in CATEGORIES], dtype=float)
    return idx / idx.mean(axis=1, keepdims=True)  # categories x 12, mean 1 per category


def _tastes(cfg: MarketConfig, products: pd.DataFrame, rng: np.random.Generator):
    """Return (affinity S x P log weights, mu S x P, sigma P)."""
    cats = list(CATEGORIES)
    cat_idx = products[CATEGORY].map({c: i for i, c in enumerate(cats)}).to_numpy()
    seg_names = list(SEGMENTS)
    n_s, n_p = len(seg_names), len(products)
    cat_aff = np.zeros((n_s, len(cats)))
    take = np.full((n_s, len(cats)), cfg.take_rate_other)
    for s, name in enumerate(seg_names):
        for rank, c in enumerate(SEGMENTS[name][0]):
            cat_aff[s, cats.index(c)] = cfg.affinity_liked[rank]
            take[s, cats.index(c)] = cfg.take_rate_liked
    popularity = rng.normal(0.0, cfg.affinity_product_sd, size=n_p)
    affinity = cat_aff[:, cat_idx] + popularity[None, :]
    logit = np.log(take[:, cat_idx] / (1 - take[:, cat_idx]))
    logit = logit + rng.normal(0.0, cfg.take_rate_logit_sd, size=(n_s, n_p))
    key_pos = {k: i for i, k in enumerate(products["key"]) if k}
    for members, segs in PLANTED_PAIRS + PLANTED_TRIPLES:
        for seg in segs:
            s = seg_names.index(seg)
            for m in members:
                affinity[s, key_pos[m]] = max(affinity[s, key_pos[m]], cfg.affinity_liked[0])
                affinity[s, key_pos[m]] += cfg.planted_affinity
                pt = cfg.synergy_take_rate if regime(members) == SYNERGY else cfg.joint_take_rate
                logit[s, key_pos[m]] = np.log(pt / (1 - pt))
    q = 1 / (1 + np.exp(-logit))  # P(w >= list price)
    sigma = np.round(rng.uniform(*cfg.sigma_range, size=n_p), 3)
    # P(w >= p) = 1 - Phi((log p - mu) / sigma) = q  =>  mu = log p + sigma * Phi^-1(q)
    mu = np.log(products[PRICE].to_numpy())[None, :] + sigma[None, :] * ndtri(q)
    return np.round(affinity, 4), np.round(mu, 4), sigma


def _consideration_probs(affinity: np.ndarray, season_log: np.ndarray) -> np.ndarray:
    """Softmax over products of affinity + log seasonal index; S x P or S x 12 x P."""
    z = affinity + season_log
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


# ---------------------------------------------------------------------------
# visits, considerations, purchases


def _draw_visits(cfg, segment, season_by_seg, rng):
    """One row per visit: customer index, month (0..11), timestamp."""
    n_c = len(segment)
    rate = rng.gamma(cfg.visit_rate_shape, cfg.visits_per_month / cfg.visit_rate_shape, n_c)
    lam = rate[:, None] * season_by_seg[segment]  # customers x months
    counts = rng.poisson(lam)
    cust, month = np.nonzero(counts)
    reps = counts[cust, month]
    cust, month = np.repeat(cust, reps), np.repeat(month, reps)
    start = pd.to_datetime([f"{YEAR}-{m + 1:02d}-01" for m in range(12)] + [f"{YEAR + 1}-01-01"])
    secs = (start[1:] - start[:-1]).total_seconds().to_numpy()
    offset = rng.random(len(cust)) * secs[month]
    ts = start[:-1][month] + pd.to_timedelta(np.floor(offset), unit="s")
    order = np.lexsort((cust, ts.to_numpy()))
    return cust[order], month[order], ts[order]


def _consider(cfg, visit_seg, visit_month, probs_sm, rng):
    """Base considerations: (visit index, product index) drawn from the segment's taste."""
    n_draw = 1 + rng.poisson(cfg.considered_per_visit, size=len(visit_seg))
    v = np.repeat(np.arange(len(visit_seg)), n_draw)
    key = visit_seg[v] * 12 + visit_month[v]
    prod = np.empty(len(v), dtype=np.int64)
    n_p = probs_sm.shape[-1]
    flat = probs_sm.reshape(-1, n_p)
    for k in np.unique(key):
        rows = np.nonzero(key == k)[0]
        prod[rows] = rng.choice(n_p, size=len(rows), p=flat[k])
    return v, prod


def _partner_table(products: pd.DataFrame, groups) -> tuple[np.ndarray, np.ndarray]:
    """Directed (product, partner) index pairs of planted groups."""
    pos = {k: i for i, k in enumerate(products["key"]) if k}
    src, dst = [], []
    for members in groups:
        for a in members:
            for b in members:
                if a != b:
                    src.append(pos[a])
                    dst.append(pos[b])
    return np.array(src, dtype=np.int64), np.array(dst, dtype=np.int64)


def _expand(v, p, src, dst, prob, rng):
    """Add each (visit, partner) for rows whose product has partners, each with ``prob``."""
    hit = np.nonzero(np.isin(p, src))[0]
    if len(hit) == 0:
        return v[:0], p[:0]
    order = np.argsort(src, kind="stable")
    s_sorted, d_sorted = src[order], dst[order]
    lo = np.searchsorted(s_sorted, p[hit], side="left")
    hi = np.searchsorted(s_sorted, p[hit], side="right")
    n = hi - lo
    rows = np.repeat(hit, n)
    idx = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)])
    keep = rng.random(len(rows)) < prob
    return v[rows][keep], d_sorted[idx][keep]


def _decide(v, p, visit_seg, week, mu, sigma, price_pw, rng):
    """Willingness to pay per occasion; returns (bought mask, surplus, price paid, w)."""
    eps = rng.standard_normal(len(v))
    w = np.exp(mu[visit_seg[v], p] + sigma[p] * eps)
    price = price_pw[p, week[v]]
    return w >= price, w - price, price, w


def _needs(cfg, products, visit_seg, rng):
    """(visit, product) for every member of each planted group a visit needs: a
    visit of one of the group's fan segments needs it with ``need_rate``."""
    pos = {k: i for i, k in enumerate(products["key"]) if k}
    seg_names = list(SEGMENTS)
    vs, ps = [], []
    for members, segs in PLANTED_PAIRS + PLANTED_TRIPLES:
        fans = np.isin(visit_seg, [seg_names.index(x) for x in segs])
        need = np.flatnonzero(fans & (rng.random(len(visit_seg)) < cfg.need_rate))
        for m in members:
            vs.append(need)
            ps.append(np.full(len(need), pos[m], np.int64))
    return np.concatenate(vs), np.concatenate(ps)


def _decide_sets(cfg, products, v, p, w, price, bought) -> None:
    """A synergy group considered whole in a visit is bought as the visitor's best
    option of nothing, one member alone, or all of them (worth (1 + synergy) times
    the sum); ``bought`` is updated in place."""
    pos = {k: i for i, k in enumerate(products["key"]) if k}
    for members, _ in PLANTED_PAIRS + PLANTED_TRIPLES:
        if regime(members) != SYNERGY:
            continue
        ids = [pos[m] for m in members]
        rows = [pd.Series(np.flatnonzero(p == i), index=v[p == i]) for i in ids]
        whole = pd.concat(rows, axis=1, join="inner").to_numpy()  # (visits, members)
        if not len(whole):
            continue
        surplus = w[whole] - price[whole]
        all_surplus = (1 + cfg.synergy) * w[whole].sum(axis=1) - price[whole].sum(axis=1)
        best = surplus.max(axis=1)
        take_all = (all_surplus > best) & (all_surplus > 0)
        alone = ~take_all & (best > 0)
        pick = surplus.argmax(axis=1)
        choice = take_all[:, None] | (alone[:, None] & (np.arange(len(ids)) == pick[:, None]))
        bought[whole.ravel()] = choice.ravel()


def _dedupe(v, p, *rest):
    """Keep the first occurrence of each (visit, product)."""
    key = v.astype(np.int64) * 100_000 + p
    _, first = np.unique(key, return_index=True)
    first = np.sort(first)
    return (v[first], p[first], *(r[first] for r in rest))


def _simulate(cfg, products, mu, sigma, affinity, segment, rng):
    """Return purchases (visit, product, price) plus visit tables and consideration counts."""
    season = _seasonal_index()
    cat_idx = products[CATEGORY].map({c: i for i, c in enumerate(CATEGORIES)}).to_numpy()
    season_log = np.log(season[cat_idx].T)  # 12 x P
    probs_sm = _consideration_probs(affinity[:, None, :], season_log[None, :, :])  # S x 12 x P
    # a segment visits more in months when its categories are in season
    base = _consideration_probs(affinity, 0.0)  # S x P
    season_by_seg = base @ season[cat_idx]  # S x 12: taste-weighted seasonal index
    season_by_seg = season_by_seg / season_by_seg.mean(axis=1, keepdims=True)

    v_cust, v_month, v_ts = _draw_visits(cfg, segment, season_by_seg, rng)
    v_seg = segment[v_cust]
    v_week = np.minimum((v_ts.day_of_year.to_numpy() - 1) // 7, N_WEEKS - 1)

    promo = np.where(
        rng.random((len(products), N_WEEKS)) < cfg.promo_share,
        rng.choice(np.array(cfg.promo_discounts), size=(len(products), N_WEEKS)),
        0.0,
    )
    price_pw = np.round(products[PRICE].to_numpy()[:, None] * (1 - promo), 2)

    # base considerations, the substitute of a considered substitute, and the
    # planted groups a visit needs (every member considered)
    v, p = _consider(cfg, v_seg, v_month, probs_sm, rng)
    sub_src, sub_dst = _partner_table(products, SUBSTITUTES)
    v2, p2 = _expand(v, p, sub_src, sub_dst, cfg.substitute_prob, rng)
    v3, p3 = _needs(cfg, products, v_seg, rng)
    v, p = _dedupe(np.concatenate([v, v2, v3]), np.concatenate([p, p2, p3]))
    bought, surplus, paid, w = _decide(v, p, v_seg, v_week, mu, sigma, price_pw, rng)
    _decide_sets(cfg, products, v, p, w, paid, bought)

    # considerations per segment x product: all, and those made at the list price
    considered = np.zeros((2, len(SEGMENTS), len(products)), dtype=np.int64)
    np.add.at(considered[0], (v_seg[v], p), 1)
    at_list = promo[p, v_week[v]] == 0
    np.add.at(considered[1], (v_seg[v][at_list], p[at_list]), 1)

    # at most one of a substitute pair per visit: the larger surplus wins
    pair_of = np.full(len(products), -1)
    pair_of[sub_src] = _pair_ids(sub_src, sub_dst)
    df = pd.DataFrame({"v": v, "p": p, "s": surplus, "paid": paid})[bought]
    df["pair"] = pair_of[df["p"].to_numpy()]
    subs = df[df["pair"] >= 0].sort_values(["v", "pair", "s"], ascending=[True, True, False])
    drop = subs.index[subs.duplicated(["v", "pair"], keep="first")]
    df = df.drop(index=drop)
    visits = pd.DataFrame({"customer": v_cust, "month": v_month, "timestamp": v_ts})
    return df[["v", "p", "paid"]].reset_index(drop=True), visits, considered, promo, season


def _pair_ids(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """For each directed substitute edge, the id of its unordered pair."""
    lo, hi = np.minimum(src, dst), np.maximum(src, dst)
    _, ids = np.unique(lo * 100_000 + hi, return_inverse=True)
    return ids


# ---------------------------------------------------------------------------
# assembling the files


def _quantities(n: int, cfg: MarketConfig, rng: np.random.Generator) -> np.ndarray:
    return rng.choice(np.array([1, 2, 3]), size=n, p=np.array(cfg.quantity_probs))


def _fmt_ts(ts: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    return np.asarray(pd.DatetimeIndex(ts).strftime(TIMESTAMP_FORMAT), dtype=object)


def _dirt(cfg, lines: pd.DataFrame, products, price_pw, rng):
    """Additive dirt: returns, cancelled orders, postage lines and guest orders."""
    end = pd.Timestamp(f"{YEAR}-12-31 23:59:59")
    extra = []
    # returns: a later order of the same customer with a negative quantity
    n_ret = int(round(cfg.return_share * len(lines)))
    ret = lines.iloc[np.sort(rng.choice(len(lines), n_ret, replace=False))].copy()
    days = pd.to_timedelta(rng.integers(3 * 86400, 21 * 86400, n_ret), unit="s")
    ret["ts"] = np.minimum(ret["ts"] + days, end)
    ret["qty"] = -ret["qty"]
    ret["order_key"] = [f"R{i}" for i in range(n_ret)]
    extra.append(ret)
    # cancelled orders: a whole order reversed within two days, id prefixed with C
    keys = lines["order_key"].unique()
    cancel = rng.choice(keys, cfg.n_cancelled_orders, replace=False)
    can = lines[lines["order_key"].isin(cancel)].copy()
    hours = pd.to_timedelta(rng.integers(3600, 48 * 3600, len(cancel)), unit="s")
    can["ts"] = np.minimum(
        can["ts"] + can["order_key"].map(dict(zip(cancel, hours, strict=True))), end
    )
    can["qty"] = -can["qty"]
    can["order_key"] = "C" + can["order_key"].astype(str)
    extra.append(can)
    # postage: one POST line on some orders
    post_orders = rng.choice(keys, cfg.n_postage_lines, replace=False)
    first = lines.drop_duplicates("order_key").set_index("order_key").loc[post_orders]
    post = first.reset_index()[["order_key", "customer", "ts"]].copy()
    post["p"], post["qty"], post["paid"] = -1, 1, 18.0
    extra.append(post)
    # guest orders: lines without a customer id
    guests = []
    for g in range(cfg.n_guest_orders):
        k = int(rng.integers(1, 4))
        prods = rng.choice(len(products), k, replace=False)
        ts = pd.Timestamp(f"{YEAR}-01-01") + pd.to_timedelta(
            int(rng.integers(0, 365 * 86400)), unit="s"
        )
        week = min((ts.day_of_year - 1) // 7, N_WEEKS - 1)
        for pi in prods:
            guests.append(
                {
                    "order_key": f"G{g}",
                    "customer": -1,
                    "ts": ts,
                    "p": pi,
                    "qty": 1,
                    "paid": price_pw[pi, week],
                }
            )
    extra.append(pd.DataFrame(guests))
    dirt = {
        "return_lines": n_ret,
        "cancelled_orders": int(cfg.n_cancelled_orders),
        "cancelled_lines": len(can),
        "postage_lines": int(cfg.n_postage_lines),
        "missing_customer_orders": int(cfg.n_guest_orders),
        "missing_customer_lines": len(guests),
    }
    return pd.concat(extra, ignore_index=True), dirt


def _order_lines(cfg, purchases, visits, products, customer_ids, price_pw, rng):
    lines = purchases.rename(columns={"v": "order_key"}).copy()
    lines["customer"] = visits["customer"].to_numpy()[lines["order_key"].to_numpy()]
    lines["ts"] = visits["timestamp"].to_numpy()[lines["order_key"].to_numpy()]
    lines["qty"] = _quantities(len(lines), cfg, rng)
    lines["order_key"] = lines["order_key"].astype(str)
    n_clean = len(lines)
    extra, dirt = _dirt(cfg, lines, products, price_pw, rng)
    lines = pd.concat([lines, extra], ignore_index=True)
    # order numbers follow time; a cancellation keeps its order's number after the C
    firsts = (
        lines[~lines["order_key"].str.startswith("C")]
        .groupby("order_key")["ts"]
        .min()
        .sort_values(kind="stable")
    )
    firsts = firsts.reset_index().sort_values(["ts", "order_key"], kind="stable")
    number = dict(
        zip(firsts["order_key"], (500001 + np.arange(len(firsts))).astype(str), strict=True)
    )
    is_c = lines["order_key"].str.startswith("C")
    oid = np.where(
        is_c, "C" + lines["order_key"].str[1:].map(number), lines["order_key"].map(number)
    )
    pid = np.where(lines["p"] >= 0, products[PRODUCT_ID].to_numpy()[lines["p"].clip(0)], "POST")
    name = np.where(lines["p"] >= 0, products[NAME].to_numpy()[lines["p"].clip(0)], "POSTAGE")
    cust = np.where(lines["customer"] >= 0, customer_ids[lines["customer"].clip(0)], None)
    out = pd.DataFrame(
        {
            ORDER_ID: oid,
            CUSTOMER_ID: pd.array(cust, dtype="str"),
            PRODUCT_ID: pid,
            QUANTITY: lines["qty"].astype(np.int64).to_numpy(),
            UNIT_PRICE: np.round(lines["paid"].astype(float).to_numpy(), 2),
            TIMESTAMP: _fmt_ts(lines["ts"]),
            NAME: name,
        }
    )
    out = out.sort_values([TIMESTAMP, ORDER_ID, PRODUCT_ID, QUANTITY], kind="stable")
    dirt["clean_lines"] = n_clean
    dirt["total_lines"] = len(out)
    return out.reset_index(drop=True), dirt


def _customers(cfg, customer_ids, order_lines, rng) -> pd.DataFrame:
    names, probs = zip(*COUNTRIES, strict=True)
    country = rng.choice(np.array(names, dtype=object), len(customer_ids), p=np.array(probs))
    first = order_lines.dropna(subset=[CUSTOMER_ID]).groupby(CUSTOMER_ID)[TIMESTAMP].min().str[:10]
    last_day = pd.to_datetime(pd.Series(customer_ids).map(first).fillna(f"{YEAR}-12-31").to_numpy())
    start = pd.Timestamp("2021-01-01")
    span = (last_day - start).days.to_numpy()
    signup = start + pd.to_timedelta(np.floor(rng.random(len(span)) * (span + 1)), unit="D")
    return pd.DataFrame(
        {CUSTOMER_ID: customer_ids, COUNTRY: country, "signup_date": signup.strftime("%Y-%m-%d")}
    )


def _round_list(a: np.ndarray, digits: int = 4) -> list:
    return np.round(np.asarray(a, dtype=float), digits).tolist()


def generate_market(
    seed: int = 7,
    config: MarketConfig | None = None,
    progress: Callable[[float], None] | None = None,
) -> Market:
    """Generate the sample market; the same seed and config give the same market."""
    cfg = config or MarketConfig()
    rng = np.random.default_rng(seed)
    products = _make_products(cfg, rng)
    affinity, mu, sigma = _tastes(cfg, products, rng)
    seg_names = list(SEGMENTS)
    shares = np.array([SEGMENTS[s][1] for s in seg_names])
    segment = rng.choice(len(seg_names), size=cfg.n_customers, p=shares / shares.sum())
    customer_ids = np.array([f"C{i + 1:05d}" for i in range(cfg.n_customers)], dtype=object)
    if progress:
        progress(0.2)
    purchases, visits, considered, promo, season = _simulate(
        cfg, products, mu, sigma, affinity, segment, rng
    )
    price_pw = np.round(products[PRICE].to_numpy()[:, None] * (1 - promo), 2)
    if progress:
        progress(0.7)
    lines, dirt = _order_lines(cfg, purchases, visits, products, customer_ids, price_pw, rng)
    customers = _customers(cfg, customer_ids, lines, rng)
    log.info(
        "sample market: %d lines, %d products, %d customers",
        len(lines),
        len(products),
        len(customers),
    )

    key_to_id = dict(zip(products["key"], products[PRODUCT_ID], strict=True))
    id_to_name = dict(zip(products[PRODUCT_ID], products[NAME], strict=True))

    def group(members, segs=None):
        ids = [key_to_id[m] for m in members]
        d = {"products": ids, "names": [id_to_name[i] for i in ids]}
        if segs is not None:
            d["segments"] = list(segs)
            d["regime"] = regime(members)
            d["synergy"] = cfg.synergy if regime(members) == SYNERGY else 0.0
            d["need_rate"] = cfg.need_rate
        return d

    q = 1 - ndtr((np.log(products[PRICE].to_numpy())[None, :] - mu) / sigma[None, :])
    promo_rows = np.argwhere(promo > 0)
    season_df = {c: _round_list(season[i], 3) for i, c in enumerate(CATEGORIES)}
    ground_truth = {
        "seed": int(seed),
        "command": f"python -m engine.sample_market --out sample_data --seed {seed}",
        "year": YEAR,
        "params": _jsonable(cfg),
        "categories": list(CATEGORIES),
        "segments": [
            {"name": s, "liked_categories": list(SEGMENTS[s][0]), "size": int((segment == k).sum())}
            for k, s in enumerate(seg_names)
        ],
        "customer_segment": dict(
            zip(customer_ids.tolist(), [seg_names[k] for k in segment], strict=True)
        ),
        "planted_pairs": [group(m, s) for m, s in PLANTED_PAIRS],
        "planted_triples": [group(m, s) for m, s in PLANTED_TRIPLES],
        "substitutes": [group(pair) for pair in SUBSTITUTES],
        "wtp": {
            "model": "w = exp(mu[segment, product] + sigma[product] * eps), eps ~ N(0, 1)"
            " per occasion; bought when w >= current price",
            "segments": seg_names,
            "product_ids": products[PRODUCT_ID].tolist(),
            "mu": _round_list(mu),
            "sigma": _round_list(sigma),
            "take_rate_at_list_price": _round_list(q),
        },
        "consideration": {
            "affinity": _round_list(affinity),
            "probability": _round_list(_consideration_probs(affinity, 0.0), 6),
            "per_visit": f"1 + Poisson({cfg.considered_per_visit})",
            "visits_per_month": cfg.visits_per_month,
            "need_rate": cfg.need_rate,
            "substitute_prob": cfg.substitute_prob,
            "counts": considered[0].tolist(),
            "counts_at_list_price": considered[1].tolist(),
        },
        "costs": _round_list(products[COST].to_numpy(), 2),
        "seasonal_index": season_df,
        "promotions": {
            "week": "(day of year - 1) // 7, 0..52",
            "share_of_product_weeks": round(float((promo > 0).mean()), 4),
            "discount_counts": {
                f"{d:.2f}": int((np.isclose(promo, d)).sum()) for d in cfg.promo_discounts
            },
            "calendar": [
                [products[PRODUCT_ID].iat[i], int(w), round(float(promo[i, w]), 2)]
                for i, w in promo_rows
            ],
        },
        "dirt": dirt,
        "counts": {
            "products": len(products),
            "customers": len(customers),
            "lines": len(lines),
            "clean_lines": dirt["clean_lines"],
            "orders": int(lines.loc[~lines[ORDER_ID].str.startswith("C"), ORDER_ID].nunique()),
        },
    }
    if progress:
        progress(1.0)
    return Market(
        order_lines=lines,
        products=products[list(PRODUCT_FILE_COLUMNS)].reset_index(drop=True),
        customers=customers,
        ground_truth=ground_truth,
    )


def _jsonable(cfg: MarketConfig) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()}


def write_market(market: Market, out_dir: str | Path) -> list[Path]:
    """Write order_lines.csv, products.csv, customers.csv and ground_truth.json."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, frame in (
        ("order_lines.csv", market.order_lines),
        ("products.csv", market.products),
        ("customers.csv", market.customers),
    ):
        path = out / name
        frame.to_csv(path, index=False, float_format="%.2f", lineterminator="\n")
        paths.append(path)
    path = out / "ground_truth.json"
    path.write_text(json.dumps(market.ground_truth, indent=1) + "\n", encoding="utf-8")
    paths.append(path)
    return paths


# ---------------------------------------------------------------------------
# helpers for tests of later stages


def true_segment_labels(ground_truth: dict, customer_ids: Sequence[str]) -> np.ndarray:
    """Integer segment (index into ground_truth["wtp"]["segments"]) for each customer id."""
    names = ground_truth["wtp"]["segments"]
    pos = {s: i for i, s in enumerate(names)}
    mapping = ground_truth["customer_segment"]
    missing = [c for c in customer_ids if c not in mapping]
    if missing:
        raise KeyError(f"customer ids not in the ground truth: {missing[:5]}")
    return np.array([pos[mapping[c]] for c in customer_ids], dtype=np.int64)


def wtp_parameters(ground_truth: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mu S x P, sigma P, segment sizes S); products in products.csv order."""
    wtp = ground_truth["wtp"]
    mu = np.asarray(wtp["mu"], dtype=float)
    sigma = np.asarray(wtp["sigma"], dtype=float)
    sizes = np.array([s["size"] for s in ground_truth["segments"]], dtype=np.int64)
    return mu, sigma, sizes


def base_interest(ground_truth: dict) -> np.ndarray:
    """(S, P) probability that a visit considers each product by its own draws
    (1 + Poisson(λ) draws from the segment's taste), before any planted need."""
    prob = np.asarray(ground_truth["consideration"]["probability"], float)
    lam = float(ground_truth["params"]["considered_per_visit"])
    return 1.0 - (1.0 - prob) * np.exp(-lam * prob)


class PlantedLift:
    """The true joint interest of the sample market, as ``Market.lift``: base
    considerations independent, each planted group's fan-segment visits needing
    the whole group with its ``need_rate``."""

    def __init__(self, ground_truth: dict) -> None:
        self.base = base_interest(ground_truth)
        pos = {pid: i for i, pid in enumerate(ground_truth["wtp"]["product_ids"])}
        seg = {name: i for i, name in enumerate(ground_truth["wtp"]["segments"])}
        self.groups = [
            (frozenset(pos[x] for x in g["products"]), {seg[x] for x in g["segments"]},
             float(g["need_rate"]))
            for g in ground_truth["planted_pairs"] + ground_truth["planted_triples"]
        ]

    def none_of(self, segment: int, items) -> float:
        """P(a visit of ``segment`` is in the market for none of ``items``)."""
        items = set(int(i) for i in items)
        out = float(np.prod(1.0 - self.base[segment, sorted(items)]))
        for members, fans, rate in self.groups:
            if segment in fans and members & items:
                out *= 1.0 - rate
        return out

    def interest(self) -> np.ndarray:
        """(S, P) probability of being in the market for each product."""
        n_s, n_p = self.base.shape
        return np.array([[1.0 - self.none_of(s, [i]) for i in range(n_p)] for s in range(n_s)])

    def all_of(self, segment: int, items) -> float:
        items = [int(i) for i in items]
        total = 1.0
        for r in range(1, len(items) + 1):
            for w in itertools.combinations(items, r):
                total += (-1) ** r * self.none_of(segment, w)
        return total

    def __call__(self, segment: int, items) -> float:
        indep = float(np.prod([1.0 - self.none_of(segment, [i]) for i in items]))
        return self.all_of(segment, items) / indep if indep > 0 else 1.0


def true_market(ground_truth: dict, list_price: np.ndarray, cost: np.ndarray):
    """The engine's ``Market`` of the sample shop's true demand: planted willingness
    to pay, interest (joint for the planted groups); with ``true_synergy``."""
    from engine.pricing.simulate import Market as SimMarket

    mu, sigma, sizes = wtp_parameters(ground_truth)
    lift = PlantedLift(ground_truth)
    return SimMarket(mu, sigma, np.asarray(list_price, float), np.asarray(cost, float),
                     sizes.astype(float), interest=lift.interest(), lift=lift)


def true_synergy(ground_truth: dict, bundle: Sequence[str]) -> float:
    """Synergy of a bundle (product ids): its planted group's, if it is one."""
    for g in ground_truth["planted_pairs"] + ground_truth["planted_triples"]:
        if set(g["products"]) == set(bundle):
            return float(g.get("synergy", 0.0))
    return 0.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engine.sample_market", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", default="sample_data", help="output folder")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    market = generate_market(seed=args.seed)
    for path in write_market(market, args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
