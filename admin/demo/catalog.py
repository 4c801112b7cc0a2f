"""Fake but plausible categories and products, the products as COPY text in fixed-size chunks."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from admin.demo.rows import TWO_YEARS, timestamp_formatter


@dataclass(frozen=True)
class Subcategory:
    name: str
    sku_prefix: str
    median_price: float  # euros
    variants: str  # a key of VARIANTS
    nouns: tuple[str, ...]


# top category -> its subcategories
CATEGORIES: dict[str, tuple[Subcategory, ...]] = {
    "Electronics": (
        Subcategory("Headphones", "HPH", 79, "colour",
                    ("Wireless Headphones", "Earbuds", "Over-Ear Headphones", "Gaming Headset")),
        Subcategory("Phone Accessories", "PHA", 19, "colour",
                    ("Phone Case", "USB-C Cable", "Wall Charger", "Power Bank", "Screen Guard")),
        Subcategory("Smart Home", "SMH", 34, "pack",
                    ("Smart Plug", "Smart Bulb", "Motion Sensor", "Door Sensor", "Thermostat")),
        Subcategory("Cameras", "CAM", 59, "colour",
                    ("Action Camera", "Tripod", "Memory Card", "Camera Bag", "Ring Light")),
        Subcategory("Accessories", "ELA", 29, "colour",
                    ("Keyboard", "Wireless Mouse", "USB Hub", "Monitor Stand", "Laptop Sleeve")),
    ),
    "Home & Kitchen": (
        Subcategory("Cookware", "CKW", 45, "size_cm",
                    ("Frying Pan", "Saucepan", "Stockpot", "Wok", "Dutch Oven")),
        Subcategory("Kitchen Tools", "KTL", 14, "none",
                    ("Chef's Knife", "Cutting Board", "Peeler", "Whisk", "Spatula", "Grater")),
        Subcategory("Tableware", "TBW", 22, "colour",
                    ("Dinner Plate Set", "Mug", "Tumbler", "Salad Bowl", "Cutlery Set")),
        Subcategory("Bedding", "BED", 39, "bed",
                    ("Duvet Cover", "Pillow", "Fitted Sheet", "Throw Blanket")),
        Subcategory("Storage", "STO", 18, "pack",
                    ("Storage Box", "Shelf Basket", "Food Container Set", "Shoe Rack")),
    ),
    "Clothing": (
        Subcategory("Men's Tops", "MTP", 29, "size",
                    ("T-Shirt", "Polo Shirt", "Hoodie", "Jumper", "Flannel Shirt")),
        Subcategory("Women's Tops", "WTP", 32, "size",
                    ("Blouse", "T-Shirt", "Cardigan", "Tunic", "Tank Top")),
        Subcategory("Trousers", "TRS", 44, "size",
                    ("Jeans", "Chinos", "Joggers", "Shorts", "Leggings")),
        Subcategory("Outerwear", "OUT", 89, "size",
                    ("Rain Jacket", "Parka", "Fleece Jacket", "Gilet", "Softshell Jacket")),
        Subcategory("Accessories", "CLA", 16, "colour",
                    ("Beanie", "Scarf", "Leather Belt", "Gloves", "Socks")),
    ),
    "Shoes": (
        Subcategory("Running Shoes", "RUN", 99, "shoe",
                    ("Road Running Shoes", "Trail Running Shoes", "Racing Flats")),
        Subcategory("Sneakers", "SNK", 69, "shoe",
                    ("Low-Top Sneakers", "High-Top Sneakers", "Slip-On Sneakers")),
        Subcategory("Boots", "BOT", 109, "shoe",
                    ("Chelsea Boots", "Hiking Boots", "Ankle Boots", "Rain Boots")),
        Subcategory("Sandals", "SND", 35, "shoe",
                    ("Sandals", "Flip-Flops", "Slides")),
    ),
    "Sports & Outdoors": (
        Subcategory("Camping", "CMP", 64, "colour",
                    ("Tent", "Sleeping Bag", "Camping Stove", "Headlamp", "Camping Chair")),
        Subcategory("Cycling", "CYC", 38, "colour",
                    ("Bike Light Set", "Bike Lock", "Helmet", "Saddle Bag", "Pump")),
        Subcategory("Fitness", "FIT", 27, "none",
                    ("Yoga Mat", "Dumbbell Set", "Resistance Bands", "Kettlebell", "Jump Rope")),
    ),
    "Beauty & Health": (
        Subcategory("Skincare", "SKN", 18, "volume",
                    ("Face Cream", "Cleanser", "Serum", "Sunscreen SPF 50", "Lip Balm")),
        Subcategory("Hair Care", "HAI", 15, "volume",
                    ("Shampoo", "Conditioner", "Hair Dryer", "Hair Brush", "Hair Oil")),
        Subcategory("Oral Care", "ORL", 12, "pack",
                    ("Electric Toothbrush", "Toothpaste", "Dental Floss", "Brush Heads")),
    ),
    "Garden": (
        Subcategory("Garden Tools", "GDT", 24, "none",
                    ("Pruning Shears", "Trowel", "Rake", "Garden Hose", "Watering Can")),
        Subcategory("Plant Pots", "POT", 19, "size_cm",
                    ("Terracotta Pot", "Hanging Planter", "Raised Bed", "Self-Watering Pot")),
        Subcategory("Outdoor Lighting", "ODL", 29, "pack",
                    ("Solar Path Light", "String Lights", "Wall Lantern")),
    ),
    "Toys & Games": (
        Subcategory("Board Games", "BRD", 29, "none",
                    ("Strategy Game", "Family Game", "Card Game", "Party Game")),
        Subcategory("Puzzles", "PUZ", 17, "pieces",
                    ("Jigsaw Puzzle", "3D Puzzle", "Puzzle Mat")),
        Subcategory("Building Sets", "BLD", 39, "none",
                    ("Building Blocks", "Marble Run", "Construction Set")),
        Subcategory("Plush Toys", "PLU", 16, "size_cm",
                    ("Teddy Bear", "Plush Fox", "Plush Whale", "Plush Owl")),
    ),
    "Pet Supplies": (
        Subcategory("Dogs", "DOG", 21, "size",
                    ("Dog Lead", "Dog Bed", "Chew Toy", "Dog Harness", "Food Bowl")),
        Subcategory("Cats", "CAT", 19, "colour",
                    ("Scratching Post", "Litter Tray", "Cat Toy Set", "Cat Bed")),
    ),
    "Office": (
        Subcategory("Stationery", "STN", 9, "pack",
                    ("Notebook", "Fountain Pen", "Gel Pens", "Sticky Notes", "Planner")),
        Subcategory("Desk Accessories", "DSK", 26, "colour",
                    ("Desk Organiser", "Desk Lamp", "Document Tray", "Desk Mat")),
    ),
}  # fmt: skip

# (top, sub) for every subcategory, in a fixed order: products point at these by index
LEAVES: tuple[tuple[str, Subcategory], ...] = tuple(
    (top, sub) for top, subs in CATEGORIES.items() for sub in subs
)

BRANDS = (
    "Nordvik", "Altura", "Brightwell", "Kestrel", "Oakridge", "Rivermoor", "Solberg", "Tidewater",
    "Verano", "Wrenfield", "Halden", "Corvo", "Maplestone", "Fjordline", "Zephyr", "Hearthside",
    "Élan", "Sjöberg", "Lumière", "Kōgen", "Café Verde", "O'Hara & Sons", "Brück", "Ostrava",
    "Pine & Pebble", "Quill", "Sunnyvale", "Årstad", "Mirabel", "Tessera",
)  # fmt: skip
ADJECTIVES = (
    "Classic", "Compact", "Essential", "Premium", "Everyday", "Lightweight", "Deluxe", "Eco",
    "Pro", "Urban", "Heritage", "Studio",
)  # fmt: skip
VARIANTS: dict[str, tuple[str, ...]] = {
    "colour": ("Black", "White", "Navy", "Grey", "Red", "Forest Green", "Sand", "Sky Blue"),
    "size": ("XS", "S", "M", "L", "XL", "XXL"),
    "shoe": tuple(f"EU {size}" for size in range(36, 47)),
    "size_cm": ("16 cm", "20 cm", "24 cm", "28 cm", "32 cm"),
    "bed": ("Single", "Double", "King", "135 x 200 cm", "155 x 220 cm"),
    "volume": ("30 ml", "50 ml", "100 ml", "250 ml", "500 ml"),
    "pack": ("Single", "Pack of 2", "Pack of 3", "Pack of 4", "Pack of 6"),
    "pieces": ("500 pieces", "1000 pieces", "1500 pieces", "2000 pieces"),
    "none": ("",),
}
FEATURES = (
    "Designed for everyday use.", "Backed by a two-year warranty.",
    "Ships in recyclable packaging.", "Easy to clean.", "Made with recycled materials.",
    "Tested for durability in our own lab.", "A customer favourite.",
    "Covered by 30-day free returns.", "Fits neatly in a drawer or a bag.",
    "Sourced from certified suppliers.", "Refreshed design for this season.",
    "Spare parts available for ten years.", "Gift-wrapped on request.",
)  # fmt: skip


CATALOG_HEAD_START = 60 * 24 * 3600


def _price_cents(rng: random.Random, median: float) -> int:
    """A shop's price near the median: whole euros minus a cent (19.99), sometimes .49."""
    euros = max(1, min(round(rng.lognormvariate(math.log(median), 0.45)), 9_999))
    return euros * 100 - (51 if rng.random() < 0.15 else 1)


@dataclass(frozen=True)
class ProductChunks:
    """COPY text for products with ids first_id, first_id+1, ...

    `category_ids[i]` is the id of LEAVES[i]; SKUs carry the product id, so they are unique
    without a lookup.
    """

    first_id: int
    count: int
    category_ids: Sequence[int]
    chunk_rows: int = 20_000
    seed: int | None = None
    now: float | None = None

    COLUMNS = (
        "id", "sku", "name", "description", "price", "stock", "category_id", "active",
        "created_at", "updated_at",
    )  # fmt: skip

    def __iter__(self) -> Iterator[bytes]:
        if len(self.category_ids) != len(LEAVES):
            raise ValueError(f"need {len(LEAVES)} category ids, got {len(self.category_ids)}")
        rng = random.Random(self.seed)
        now = self.now if self.now is not None else datetime.now(UTC).timestamp()
        stamp = timestamp_formatter(now)
        pick, rand, sample, lognormal = rng.choice, rng.random, rng.sample, rng.lognormvariate
        leaves = list(zip(range(len(LEAVES)), LEAVES, strict=True))
        end = self.first_id + self.count
        for start in range(self.first_id, end, self.chunk_rows):
            lines = []
            for product_id in range(start, min(start + self.chunk_rows, end)):
                index, (_, sub) = pick(leaves)
                noun, brand, variant = pick(sub.nouns), pick(BRANDS), pick(VARIANTS[sub.variants])
                adjective = f"{pick(ADJECTIVES)} " if rand() < 0.5 else ""
                name = f"{brand} {adjective}{noun}{', ' + variant if variant else ''}"
                description = " ".join(
                    (f"{adjective}{noun} by {brand}, from our {sub.name.lower()} range.",
                     *sample(FEATURES, 2))
                )  # fmt: skip
                cents = _price_cents(rng, sub.median_price)
                stock = 0 if rand() < 0.08 else min(int(lognormal(3.5, 1.0)), 5_000)
                # a few products are not filed under any category yet
                category = r"\N" if rand() < 0.01 else str(self.category_ids[index])
                active = "t" if rand() < 0.94 else "f"
                # the catalog opened a while before the first demo orders (see OrderChunks)
                age = rand() * (TWO_YEARS + CATALOG_HEAD_START)
                changed = age * rand() if rand() < 0.4 else age
                lines.append(
                    f"{product_id}\t{sub.sku_prefix}-{product_id:07d}\t{name}\t{description}"
                    f"\t{cents // 100}.{cents % 100:02d}\t{stock}\t{category}\t{active}"
                    f"\t{stamp(age)}\t{stamp(changed)}\n"
                )
            yield "".join(lines).encode()
