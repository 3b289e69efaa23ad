"""Builds ke-hoach-tuyen-truyen-cchc-2021.docx from the plan's text, laid out as the
district issued it (Nghị định 30/2020/NĐ-CP): a header table, title, body, "Nơi nhận"
and signature in a table. Run once; the DOCX is kept in the repository:

    .venv/bin/python tests/data/make_seed_docx.py
"""

from pathlib import Path

from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.shared import Mm, Pt

HERE = Path(__file__).parent
SOURCE = HERE / "ke-hoach-tuyen-truyen-cchc-2021.md"


def main() -> None:
    lines = [line.strip() for line in SOURCE.read_text(encoding="utf-8").splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("Thực hiện Kế hoạch"))
    end = next(i for i, line in enumerate(lines) if "Nơi nhận" in line)
    doc = Document()
    section = doc.sections[0]
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.left_margin, section.right_margin = Mm(30), Mm(20)
    style = doc.styles["Normal"]
    style.font.name = "Times New Roman"
    style.font.size = Pt(14)

    header = doc.add_table(rows=1, cols=2)
    left, right = header.rows[0].cells
    left.paragraphs[0].text = "UBND HUYỆN TRIỆU SƠN"
    left.add_paragraph("_______")
    left.add_paragraph("Số:      /KH-UBND")
    right.paragraphs[0].text = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
    right.add_paragraph("Độc lập - Tự do - Hạnh phúc")
    right.add_paragraph("_______________________")
    right.add_paragraph("Triệu Sơn, ngày      tháng      năm 2021")

    for text in ("KẾ HOẠCH", "Tuyên truyền cải cách hành chính năm 2021"):
        p = doc.add_paragraph()
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
        p.add_run(text).bold = True
    for line in lines[start:end]:
        text = line.replace("**", "").replace("#", "").strip()
        if text:
            doc.add_paragraph(text)

    footer = doc.add_table(rows=1, cols=2)
    left, right = footer.rows[0].cells
    left.paragraphs[0].text = "Nơi nhận:"
    for line in lines[end + 1 :]:
        if line.startswith("- "):
            left.add_paragraph(line)
    right.paragraphs[0].text = "KT. CHỦ TỊCH"
    right.add_paragraph("PHÓ CHỦ TỊCH")
    right.add_paragraph("")
    right.add_paragraph("Lê Quang Trung")
    doc.save(str(HERE / "ke-hoach-tuyen-truyen-cchc-2021.docx"))


if __name__ == "__main__":
    main()
