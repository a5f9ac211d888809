"""The words mail clients write around quoted history, as data: header labels, dividers,
attribution verbs and signature lines, in Chinese (Simplified and Traditional), English, German,
French, Spanish, Portuguese, Italian, Dutch, Russian, Japanese and Korean.

`reply.py` decides where the new text ends; this module only says what a line *looks like*. Each
table is a tuple of plain strings, compiled once into the patterns below; add a client's words
here, not in the algorithm.

Surprises, all deliberate:

- A label matches only as a whole line prefix followed by a colon (ASCII or full-width, a space
  before it allowed for French "De :"); bold markers (`*From:*`) and NBSP are tolerated.
- "Date"/"To"/"A" are weak alone: a header block needs a From-like and a second label, plus an
  address or a digit in the block (`reply.py`), so "From: the agency side" in prose stays.
- Signature lines are whole short lines ("Sent from my iPhone", "发自我的华为手机"); `reply.py`
  only cuts at one when nothing but a few lines of signature follows.
"""

from __future__ import annotations

import re

SPACE = r"[ \t\u3000\xa0]"  # horizontal space, including full-width space and NBSP
COLON = rf"{SPACE}?[:：]"

# ── header blocks (Outlook, QQ/Foxmail, Coremail, Alimail, Feishu, Samsung, BlackBerry …) ──────
FROM_LABELS = (
    "From", "发件人", "發件人", "寄件者", "寄件人", "发信人", "Von", "De", "Da", "Van", "От",
    "差出人", "送信者", "보낸 사람", "보낸사람", "발신", "Från", "Fra", "Od",
)
DATE_LABELS = (
    "Sent", "Date", "Send Time", "Sent Time", "发送时间", "發送時間", "寄件日期", "发送日期", "日期",
    "时间", "時間", "Gesendet", "Datum", "Envoyé", "Enviado el", "Enviado", "Enviada em",
    "Enviada", "Fecha", "Data", "Inviato", "Verzonden", "Отправлено", "Дата", "送信日時", "日付",
    "보낸 날짜", "날짜", "Skickat",
)
TO_LABELS = (
    "To", "收件人", "收件者", "An", "À", "A", "Para", "Aan", "Кому", "宛先", "받는 사람", "수신",
    "Till", "Til",
)
CC_LABELS = ("Cc", "CC", "抄送", "抄送人", "副本", "Kopie", "Копия", "참조")
SUBJECT_LABELS = (
    "Subject", "主题", "主　题", "主 题", "主題", "主旨", "Betreff", "Objet", "Asunto", "Assunto",
    "Oggetto", "Onderwerp", "Тема", "件名", "제목", "Ämne", "Emne",
)

# ── divider lines: the whole line, between runs of dashes ───────────────────────────────────
DIVIDER_PHRASES = (
    "Original Message", "Original message", "Original", "Reply Message", "Replied Message",
    "Forwarded message", "Forwarded Message", "原始邮件", "原始郵件", "邮件原件", "郵件原件",
    "回复的原邮件", "回覆的原郵件", "转发的邮件", "轉寄的郵件", "原邮件", "Ursprüngliche Nachricht",
    "Weitergeleitete Nachricht", "Message d'origine", "Message d’origine", "Message transféré",
    "Mensaje original", "Mensaje reenviado", "Mensagem original", "Mensagem encaminhada",
    "Messaggio originale", "Messaggio inoltrato", "Oorspronkelijk bericht", "Doorgestuurd bericht",
    "Исходное сообщение", "Пересылаемое сообщение", "Исходное письмо", "元のメッセージ",
    "転送されたメッセージ", "원본 메시지", "원본 이메일", "전달된 메시지",
)

# ── attributions: "On … wrote:" and its kin ─────────────────────────────────────────────────
# The verb (or ending) that closes an attribution line, before its final colon.
ATTRIBUTION_VERBS = (
    "wrote", "writes", "schrieb", "a écrit", "escribió", "escreveu", "ha scritto", "scrisse",
    "schreef", "het volgende geschreven", "написал(а)", "написал", "написала", "пишет",
    "写道", "寫道", "のメール", "さんは書きました", "は書きました", "書きました", "님이 작성", "작성",
    "쓴 글", "skrev", "napisał(a)", "napisał", "kirjoitti",
)
# Words an attribution starts with; one mid-line (after the sender's own words) splits the line.
ATTRIBUTION_OPENINGS = ("On", "Am", "Le", "El", "Em", "Il giorno", "Il", "Op", "在", "At", "Den", "W dniu")

# ── signature lines a client adds (a whole line) ──────────────────────────────────────────────
SIGNATURE_LINES = (
    # Apple, every UI language
    r"Sent from my (?:iPhone|iPad|iPod|Apple Watch|Mac)",
    r"发自我的{s}?(?:iPhone|iPad|Apple Watch)", r"从我的{s}?(?:iPhone|iPad){s}?发送",
    r"從我的{s}?(?:iPhone|iPad){s}?傳送", r"Von meinem (?:iPhone|iPad) gesendet",
    r"Envoyé de mon (?:iPhone|iPad)", r"Enviado desde mi (?:iPhone|iPad)",
    r"Enviado do meu (?:iPhone|iPad)", r"Inviato da(?:l mio)? (?:iPhone|iPad)",
    r"Verstuurd vanaf mijn (?:iPhone|iPad)", r"Отправлено с (?:iPhone|iPad)",
    r"(?:iPhone|iPad)から送信", r"나의 (?:iPhone|iPad)에서 보냄",
    # Outlook Mobile
    r"(?:Get|获取|取得) Outlook for (?:iOS|Android)", r"Outlook (?:für|for) (?:iOS|Android) herunterladen",
    r"Télécharger Outlook pour (?:iOS|Android)", r"Obtener Outlook para (?:iOS|Android)",
    r"Obter o Outlook para (?:iOS|Android)", r"Scarica Outlook per (?:iOS|Android)",
    r"Outlook voor (?:iOS|Android) downloaden", r"Загрузите Outlook для (?:iOS|Android)",
    r"(?:iOS|Android){s}?版{s}?Outlook{s}?を入手", r"(?:iOS|Android)용 Outlook 받기",
    r"(?:Sent from|Envoyé depuis) Outlook(?: for \w+| Mobile)?",
    # Android phones and their mail apps
    r"Sent from my [\w .®™-]{1,40}?(?:phone|smartphone|device|Galaxy|Pixel|tablet)[\w .,®™-]{0,60}",
    r"Sent from my (?:BlackBerry|Android|Samsung|Galaxy|HUAWEI|Huawei|Xiaomi|Honor|OPPO|vivo|Pixel|"
    r"OnePlus|Motorola|Sony|Nokia|LG)[\w .,®™-]{0,70}",
    r"Sent (?:with|from) (?:BlackBerry Work|Proton Mail|ProtonMail|Samsung Mobile|Yahoo Mail)[\w .,-]{0,50}",
    r"Sent from (?:Yahoo Mail|Mail) for (?:iPhone|Android|Windows(?: 10| 11)?)",
    r"Von meinem (?:Samsung|Galaxy|Huawei|Android)[\w .]{0,40}gesendet\.?",
    r"Envoyé (?:depuis|de) mon (?:appareil|smartphone|téléphone)[\w .]{0,40}",
    r"Enviado desde mi (?:smartphone|dispositivo|teléfono|móvil)[\w .]{0,40}",
    r"Enviado do meu (?:smartphone|dispositivo|celular)[\w .]{0,40}",
    r"Inviato dal mio (?:smartphone|dispositivo)[\w .]{0,40}",
    r"Verzonden (?:vanaf|met) (?:mijn|een)[\w .]{0,40}", r"Отправлено с (?:устройства|моего)[\w .]{0,40}",
    r"갤럭시에서 보냄", r"(?:Galaxy|갤럭시) ?스마트폰에서 보냄",
    # Chinese phones and mail apps
    r"发自我的{s}?[\w .]{1,20}?(?:手机|智能手机|平板)[。.]?", r"发自{s}?[\w .]{1,12}?(?:手机|智能手机)[。.]?",
    r"发自(?:我的)?{s}?(?:网易邮箱大师|网易邮箱|QQ邮箱|QQ 邮箱|钉钉邮箱|钉钉|飞书|阿里邮箱|企业微信|Foxmail)[\w .]{0,10}",
    r"来自{s}?(?:QQ邮箱|网易邮箱大师|企业微信|钉钉)[\w .]{0,10}", r"从{s}?Windows{s}?版邮件发送",
    r"從{s}?Windows{s}?版郵件傳送",
)

# Mailing-list footers: the line after a row of underscores, or a Google Groups notice.
LIST_FOOTER_WORDS = (
    "mailing list", "listinfo", "To unsubscribe", "unsubscribe", "邮件列表", "退订", "郵件列表",
    "You received this message because you are subscribed",
)


def _alternatives(words: tuple[str, ...]) -> str:
    """One regex alternation, longest first so "Enviado el" wins over "Enviado"."""
    escaped = (re.escape(word).replace(r"\ ", rf"{SPACE}") for word in sorted(words, key=len, reverse=True))
    return "(?:" + "|".join(escaped) + ")"


_LABEL_LEAD = rf"^{SPACE}*\*?{SPACE}*"
_LABEL_TAIL = rf"{SPACE}*\*?{COLON}\*?"
FROM_LINE = re.compile(_LABEL_LEAD + _alternatives(FROM_LABELS) + _LABEL_TAIL)
OTHER_LINE = re.compile(
    _LABEL_LEAD + _alternatives(DATE_LABELS + TO_LABELS + CC_LABELS + SUBJECT_LABELS) + _LABEL_TAIL
)
DATE_LINE = re.compile(_LABEL_LEAD + _alternatives(DATE_LABELS) + _LABEL_TAIL)
# Outlook's header with its line breaks lost: "From: X Sent: Y To: Z Subject: …" on one line.
ONE_LINE_HEADER = re.compile(
    _LABEL_LEAD + _alternatives(FROM_LABELS) + _LABEL_TAIL + r".{1,200}?\s"
    + _alternatives(DATE_LABELS) + COLON + r".{1,200}?\s" + _alternatives(TO_LABELS + SUBJECT_LABELS) + COLON
)
# NetEase Mail Master's header table: "| 发件人 | 李娜<…> |", then "| 日期 | … |".
TABLE_FROM_LINE = re.compile(rf"^{SPACE}*\|{SPACE}*{_alternatives(FROM_LABELS)}{SPACE}*\|")
TABLE_OTHER_LINE = re.compile(
    rf"^{SPACE}*\|{SPACE}*{_alternatives(DATE_LABELS + TO_LABELS + CC_LABELS + SUBJECT_LABELS)}{SPACE}*\|"
)

DIVIDER = re.compile(
    rf"^{SPACE}*[*_]*{SPACE}*-{{2,}}{SPACE}*{_alternatives(DIVIDER_PHRASES)}{SPACE}*-{{2,}}{SPACE}*[*_]*{SPACE}*$",
    re.IGNORECASE,
)
BARE_DIVIDER = re.compile(rf"^{SPACE}*(?:Original Message|原始邮件){SPACE}*$", re.IGNORECASE)  # BlackBerry
# Android mail apps: "---- Li Na wrote ----", "---- On … Li Na <…> wrote ----".
WROTE_DIVIDER = re.compile(
    rf"^{SPACE}*-{{2,}}{SPACE}*\S.{{0,250}}?{SPACE}{_alternatives(ATTRIBUTION_VERBS)}{SPACE}*-{{2,}}{SPACE}*$"
)
RULE_LINE = re.compile(rf"^{SPACE}*(?:-{{10,}}|_{{10,}}){SPACE}*$")  # Outlook Web, Alimail, lists
SIGNATURE_DASHES = re.compile(rf"^--{SPACE}?$")
SIGNATURE_LINE = re.compile(
    rf"^{SPACE}*(?:{'|'.join(SIGNATURE_LINES)})[.。!]?{SPACE}*(?:<https?://[^>\s]*>)?{SPACE}*$".replace(
        "{s}", SPACE),
    re.IGNORECASE,
)
LIST_FOOTER = re.compile(_alternatives(LIST_FOOTER_WORDS), re.IGNORECASE)

ADDRESS = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
LONE_ADDRESS = re.compile(rf"^{SPACE}*<?[\w.+'-]+@[\w-]+(?:\.[\w-]+)+>?{SPACE}*$")
# An attribution ends with its verb (and, for German and Dutch, the name) and a colon.
# German and Dutch put the name after the verb ("schrieb Li Na <…>:"); the others end on it.
NAME_AFTER_VERBS = ("schrieb", "schreef")
ATTRIBUTION_END = re.compile(
    rf"(?:{_alternatives(NAME_AFTER_VERBS)}{SPACE}+[^:：\n]{{1,160}}|{_alternatives(ATTRIBUTION_VERBS)}|>)"
    rf"{SPACE}*{COLON}{SPACE}*$"
)
ATTRIBUTION_VERB = re.compile(_alternatives(ATTRIBUTION_VERBS))
ATTRIBUTION_START = re.compile(rf"^{SPACE}*(?:{_alternatives(ATTRIBUTION_OPENINGS)}{SPACE}|\d)")
# The sender's words, then an attribution on the same line: "Sure, done On Wed, Aug 5 … wrote:".
MIDLINE_OPENING = re.compile(rf"(?<=\S){SPACE}+(?={_alternatives(ATTRIBUTION_OPENINGS)}{SPACE}.{{0,16}}\d)")
QUOTED = re.compile(rf"^{SPACE}*>")
NEW_ARROWS = re.compile(r"^>>>(?!>)")  # ">>> next step": new text when no quote context is around
DECORATION = re.compile(r"^[\s\-_=*~]*$")
