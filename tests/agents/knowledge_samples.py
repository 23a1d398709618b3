"""Documents for the knowledge tests: a bakery's facts in each format, and a PDF written by hand
(the smallest file pypdf reads text from), so no binary fixture is kept."""

from __future__ import annotations

BAKERY_MARKDOWN = """\
# Sunrise Bakery

## Location and contact
Sunrise Bakery is at 14 Mill Street, Springfield, next to the post office.
Our phone number is 555 0142. Free parking is available behind the shop for 30 minutes.

## Opening hours
We open at 7 am Monday to Saturday and at 8 am on Sunday.
We close at 6 pm on weekdays, at 4 pm on Saturday and at 1 pm on Sunday.

## Prices
A plain croissant costs 2 dollars 50. An **almond croissant** costs 3 dollars 20.
A sourdough loaf costs 6 dollars. See [our menu](https://example.com/menu) for cakes.

## Payment
We take cards and cash. We do not accept cheques.

## Delivery
We deliver within 5 miles of the shop for a 4 dollar fee, Monday to Saturday.
"""

BAKERY_HTML = """\
<!doctype html>
<html><head><title>Sunrise Bakery</title><style>body { color: red }</style>
<script>var tracking = "do not index me";</script></head>
<body>
<nav><a href="/">Home</a> <a href="/menu">Menu</a></nav>
<h1>Sunrise Bakery</h1>
<h2>Opening hours</h2>
<p>We open at <b>7 am</b> Monday to Saturday.<br>We close at 6 pm on weekdays.</p>
<h2>Prices</h2>
<table><tr><th>Item</th><th>Price</th></tr><tr><td>Baguette</td><td>3 dollars</td></tr></table>
<ul><li>Gluten-free bread on Tuesdays.</li><li>No seating inside.</li></ul>
<footer><p>Sunrise Bakery, 14 Mill Street, Springfield.</p></footer>
</body></html>
"""


# Sentences each naming its own number, so a test can tell which chunk holds which.
def numbered_prose(sentences: int, *, per_paragraph: int = 4) -> str:
    lines = [
        f"Fact number {n} says that the bakery keeps {n} trays of rolls warm for the morning rush."
        for n in range(1, sentences + 1)
    ]
    paragraphs = [
        " ".join(lines[i : i + per_paragraph]) for i in range(0, len(lines), per_paragraph)
    ]
    return "\n\n".join(paragraphs)


def _pdf_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def minimal_pdf(lines: list[str], *, title: str = "") -> bytes:
    """A one-page PDF showing ``lines`` in Helvetica (none: a page with no text)."""
    shown = " ".join(f"({_pdf_escape(line)}) Tj T*" for line in lines)
    content = f"BT /F1 12 Tf 14 TL 72 720 Td {shown} ET" if lines else ""
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    if title:
        objects.append(f"<< /Title ({_pdf_escape(title)}) >>")
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{offset:010d} 00000 n \n" for offset in offsets).encode()
    info = f" /Info {len(objects)} 0 R" if title else ""
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R{info} >>\nstartxref\n{xref}\n%%EOF\n"
    ).encode()
    return out
