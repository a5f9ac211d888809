"""read_form and friends: realistic bodies in both languages, modelled on the seed guide's forms."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from maild.core.forms import (
    FormRules,
    blank_form,
    detect_kind,
    load_form_rules,
    read_form,
    refill_form,
)
from maild.core.model import FieldError, FormResult, ItemKind, TaskDraft

RULES_FILE = Path(__file__).resolve().parents[2] / "rules" / "forms.toml"


@pytest.fixture(scope="module")
def form_rules() -> FormRules:
    with RULES_FILE.open("rb") as f:
        return load_form_rules(tomllib.load(f))


Q3_TASKS = (
    TaskDraft("新品核心卖点提炼", "王喆", "8月10日前", "500字以内卖点说明+用户场景图"),
    TaskDraft("渠道推广方案", "赵磊", "8月15日前", "包含预算、渠道选择、投放节奏"),
    TaskDraft("客诉应对流程培训", "陈静", "8月20日前", "FAQ文档+培训记录"),
)
Q3_FIELDS = {
    "title": "Q3新品推广项目",
    "initiator": "市场部 李娜",
    "participants": "产品部、销售部、客服部",
    "goal": "新品3个月内用户增长50%",
}
Q3_EN_TASKS = (
    TaskDraft("Core selling points", "Wang Zhe", "Aug 10", "Selling points in 500 words + user scenes"),
    TaskDraft("Channel plan", "Zhao Lei", "Aug 15", "Budget, channels, schedule"),
    TaskDraft("Complaint-handling training", "Chen Jing", "Aug 20", "FAQ + training record"),
)

PROJECT_ZH = """各位好：

为配合新品8月上市，现启动Q3新品推广项目，请各位确认分工。

项目名称：Q3新品推广项目
发起人/部门：市场部 李娜
参与人/部门：产品部、销售部、客服部
目标/背景：新品3个月内用户增长50%
范围：市场部、产品部、销售部、客服部
  关键环节：卖点提炼、素材制作、渠道投放、销售培训、客诉应对
任务分配：
任务名称 | 负责人 | 截止日期 | 交付标准
新品核心卖点提炼 | 王喆 | 8月10日前 | 500字以内卖点说明+用户场景图
渠道推广方案 | 赵磊 | 8月15日前 | 包含预算、渠道选择、投放节奏
客诉应对流程培训 | 陈静 | 8月20日前 | FAQ文档+培训记录

请各位负责人回复“确认”。
谢谢！
李娜  市场部
"""

PROJECT_EN = """Hi all,

Project: Q3 New Product Launch
Initiator / Dept: Marketing, Li Na
Participants: Product, Sales, Customer Service
Goal: 50% user growth within 3 months of launch
Tasks:
Task | Owner | Due | Deliverable
Core selling points | Wang Zhe | Aug 10 | Selling points in 500 words + user scenes
Channel plan | Zhao Lei | Aug 15 | Budget, channels, schedule
Complaint-handling training | Chen Jing | Aug 20 | FAQ + training record

Thanks,
Li Na
"""

PROJECT_TRADITIONAL = """項目名稱：Q3新品推廣項目
發起人/部門：市場部 李娜
參與人/部門：產品部、銷售部、客服部
目標/背景：新品3個月內用戶增長50%
任務分配：
新品核心賣點提煉｜王喆｜8月10日前｜500字以內賣點說明+用戶場景圖
渠道推廣方案｜趙磊｜8月15日前｜包含預算、渠道選擇、投放節奏
"""

PROJECT_EXCEL = (
    "项目名称：Q3新品推广项目\n发起人：市场部 李娜\n目标：新品3个月内用户增长50%\n任务列表：\n"
    "任务名称\t负责人\t截止日期\t交付标准\t备注\n"
    "新品核心卖点提炼\t王喆\t8月10日前\t500字以内卖点说明+用户场景图\t需结合用户调研数据\n"
    "渠道推广方案\t赵磊\t8月15日前\t包含预算、渠道选择、投放节奏\t预算上限待财务部确认\n"
    "客诉应对流程培训\t陈静\t8月20日前\tFAQ文档+培训记录\t\n"
)

PROJECT_ALIGNED = """项目名称：Q3新品推广项目
发起人：市场部 李娜
目标：新品3个月内用户增长50%
任务：
    任务名称            负责人    截止日期     交付标准
    新品核心卖点提炼    王喆      8月10日前    500字以内卖点说明+用户场景图
    渠道推广方案        赵磊      8月15日前    包含预算、渠道选择、投放节奏
    客诉应对流程培训    陈静      8月20日前    FAQ文档+培训记录
"""

PROJECT_MARKDOWN = """**项目名称：** Q3新品推广项目
- 发起人/部门：市场部 李娜
- 目标/背景：新品3个月内用户增长50%

| 任务名称 | 负责人 | 截止日期 | 交付标准 |
|---|:---:|---|---|
| 1. 新品核心卖点提炼 | 王喆 | 8月10日前 | 500字以内卖点说明+用户场景图 |
| 2. 渠道推广方案 | 赵磊 | 8月15日前 | 包含预算、渠道选择、投放节奏 |
| 3. 客诉应对流程培训 | 陈静 | 8月20日前 | FAQ文档+培训记录 |
"""

PROJECT_REVERSED = """项目名称：Q3新品推广项目
发起人：市场部 李娜
目标：新品3个月内用户增长50%
分工：
截止日期 | 交付标准 | 负责人 | 任务名称
8月10日前 | 500字以内卖点说明+用户场景图 | 王喆 | 新品核心卖点提炼
8月15日前 | 包含预算、渠道选择、投放节奏 | 赵磊 | 渠道推广方案
8月20日前 | FAQ文档+培训记录 | 陈静 | 客诉应对流程培训
"""

PROJECT_NO_HEADER_NUMBERED = """项目名称：Q3新品推广项目
发起人：市场部 李娜
目标：新品3个月内用户增长50%
任务分配：
1. 新品核心卖点提炼 | 王喆 | 8月10日前 | 500字以内卖点说明+用户场景图
2、渠道推广方案 | 赵磊 | 8月15日前 | 包含预算、渠道选择、投放节奏
3) 客诉应对流程培训 | 陈静 | 8月20日前 | FAQ文档+培训记录
"""

# Rows anywhere, no tasks label: `|` rows with 3+ filled cells are rows without being asked.
PROJECT_ROWS_ONLY = """项目名称：Q3新品推广项目
发起人：市场部 李娜
目标：新品3个月内用户增长50%

新品核心卖点提炼 | 王喆 | 8月10日前 | 500字以内卖点说明+用户场景图
渠道推广方案 | 赵磊 | 8月15日前 | 包含预算、渠道选择、投放节奏
客诉应对流程培训 | 陈静 | 8月20日前 | FAQ文档+培训记录
"""

THREE_FIELDS = {"title": "Q3新品推广项目", "initiator": "市场部 李娜", "goal": "新品3个月内用户增长50%"}

PROJECTS = [
    ("zh", "[项目] Q3新品推广项目", PROJECT_ZH,
     {**Q3_FIELDS, "scope": "市场部、产品部、销售部、客服部\n关键环节：卖点提炼、素材制作、渠道投放、销售培训、客诉应对"},
     Q3_TASKS),
    ("en", "[Project] Q3 New Product Launch", PROJECT_EN,
     {"title": "Q3 New Product Launch", "initiator": "Marketing, Li Na",
      "participants": "Product, Sales, Customer Service",
      "goal": "50% user growth within 3 months of launch"},
     Q3_EN_TASKS),
    ("traditional-fullwidth", "【項目】Q3新品推廣", PROJECT_TRADITIONAL,
     {"title": "Q3新品推廣項目", "initiator": "市場部 李娜", "participants": "產品部、銷售部、客服部",
      "goal": "新品3個月內用戶增長50%"},
     (TaskDraft("新品核心賣點提煉", "王喆", "8月10日前", "500字以內賣點說明+用戶場景圖"),
      TaskDraft("渠道推廣方案", "趙磊", "8月15日前", "包含預算、渠道選擇、投放節奏"))),
    ("excel-tabs", "[项目] Q3", PROJECT_EXCEL, THREE_FIELDS,
     (replace(Q3_TASKS[0], note="需结合用户调研数据"),
      replace(Q3_TASKS[1], note="预算上限待财务部确认"), Q3_TASKS[2])),
    ("aligned-columns", "[项目] Q3", PROJECT_ALIGNED, THREE_FIELDS, Q3_TASKS),
    ("markdown-numbered", "[项目] Q3", PROJECT_MARKDOWN, THREE_FIELDS, Q3_TASKS),
    ("header-reversed", "[项目] Q3", PROJECT_REVERSED, THREE_FIELDS, Q3_TASKS),
    ("numbered-no-header", "[项目] Q3", PROJECT_NO_HEADER_NUMBERED, THREE_FIELDS, Q3_TASKS),
    ("rows-without-label", "Q3推广", PROJECT_ROWS_ONLY, THREE_FIELDS, Q3_TASKS),
]


@pytest.mark.parametrize(("subject", "body", "fields", "tasks"), [c[1:] for c in PROJECTS],
                         ids=[c[0] for c in PROJECTS])
def test_project_forms(form_rules: FormRules, subject: str, body: str,
                       fields: dict[str, str], tasks: tuple[TaskDraft, ...]) -> None:
    result = read_form(subject, body, form_rules)
    assert result == FormResult(ItemKind.PROJECT, fields, tasks, ())


TASK_ZH = """张经理好，

请跟进以下任务：

任务名称：月度客户满意度报告
发起人：运营部 孙悦
负责人：数据部 刘洋
优先级（□高□中□低）：高
截止日期：7月30日
交付标准：报告PDF，含NPS趋势与改进建议
当前进度：75%
备注：数据收集已完成，待分析
"""

TASK_EN = """Task: Office equipment purchase request
Initiator: Admin, Zhou Min
Owner: Finance manager
Priority: Medium
Due date: Aug 5
Deliverable: Approved budget
"""

EMERGENCY_ZH = """紧急事务类型（□客诉☑系统故障□舆情□其他）：系统故障
发起人：客服部 陈静
事务描述（含影响范围）：订单系统下单失败
  影响华东区约30%用户，客诉量上升
响应人：王喆
处理方案（含步骤、责任人、时间）：1) 回滚昨晚发布 2) 核对订单数据 3) 发公告
预计完成时间：今天下午5点
"""

EMERGENCY_EN = """Emergency type: customer complaint
Title: VIP customer refund dispute
Description: Customer threatens to post on social media
Responder: Chen Jing
Plan: Call back within 1 hour, offer refund
ETA: within 2 hours
"""


def test_daily_task_zh(form_rules: FormRules) -> None:
    result = read_form("[任务] 月度客户满意度报告", TASK_ZH, form_rules)
    assert result == FormResult(
        ItemKind.TASK,
        {"title": "月度客户满意度报告", "initiator": "运营部 孙悦", "owner": "数据部 刘洋",
         "priority": "high", "deadline": "7月30日", "deliverable": "报告PDF，含NPS趋势与改进建议",
         "progress": "75%", "note": "数据收集已完成，待分析"},
        (TaskDraft("月度客户满意度报告", "数据部 刘洋", "7月30日", "报告PDF，含NPS趋势与改进建议",
                   "数据收集已完成，待分析", progress="75%", priority="high"),),
        (),
    )


def test_daily_task_en_inferred_from_fields(form_rules: FormRules) -> None:
    result = read_form("Office equipment", TASK_EN, form_rules)
    assert result.kind is ItemKind.TASK
    assert result.fields["priority"] == "medium"
    assert result.tasks == (TaskDraft("Office equipment purchase request", "Finance manager",
                                      "Aug 5", "Approved budget", priority="medium"),)
    assert result.errors == ()


# The seed guide's template 2 pasted from Excel: a follow-up table instead of `Label:` lines.
FOLLOW_UP_TABLE = (
    "任务名称\t发起人\t负责人\t优先级\t截止日期\t当前进度\t完成情况简述\t反馈时间\n"
    "月度客户满意度报告\t运营部 孙悦\t数据部 刘洋\t高\t7月30日\t75%\t数据收集已完成，待分析\t7月28日\n"
    "办公设备采购申请\t行政部 周敏\t财务部 吴刚\t中\t8月5日\t50%\t预算审批中\t8月3日\n"
)


def test_daily_task_follow_up_table(form_rules: FormRules) -> None:
    """Template 2 as the guide has it: no 交付标准 column, several rows (several tasks), each
    with its own 发起人, 优先级, 当前进度 and 反馈时间. Nothing is missing."""
    result = read_form("[任务] 本周跟进", FOLLOW_UP_TABLE, form_rules)
    assert result == FormResult(
        ItemKind.TASK,
        {"title": "月度客户满意度报告", "initiator": "运营部 孙悦", "owner": "数据部 刘洋",
         "deadline": "7月30日"},
        (TaskDraft("月度客户满意度报告", "数据部 刘洋", "7月30日", "", "数据收集已完成，待分析",
                   progress="75%", priority="high", feedback="7月28日",
                   row={"initiator": "运营部 孙悦"}),
         TaskDraft("办公设备采购申请", "财务部 吴刚", "8月5日", "", "预算审批中",
                   progress="50%", priority="medium", feedback="8月3日",
                   row={"initiator": "行政部 周敏"})),
        (),
    )


def test_emergency_zh(form_rules: FormRules) -> None:
    """The title of an emergency is its subject (without the marker)."""
    result = read_form("[紧急] 订单系统故障", EMERGENCY_ZH, form_rules)
    assert result == FormResult(
        ItemKind.EMERGENCY,
        {"emergency_type": "system_outage", "initiator": "客服部 陈静",
         "description": "订单系统下单失败\n影响华东区约30%用户，客诉量上升", "responder": "王喆",
         "plan": "1) 回滚昨晚发布 2) 核对订单数据 3) 发公告", "eta": "今天下午5点",
         "title": "订单系统故障"},
        (TaskDraft("订单系统故障", "王喆", "今天下午5点", "1) 回滚昨晚发布 2) 核对订单数据 3) 发公告"),),
        (),
    )


def test_emergency_en_uses_title_and_infers_kind(form_rules: FormRules) -> None:
    result = read_form("VIP refund", EMERGENCY_EN, form_rules)
    assert result.kind is ItemKind.EMERGENCY
    assert result.fields["emergency_type"] == "customer_complaint"
    assert result.tasks == (TaskDraft("VIP customer refund dispute", "Chen Jing", "within 2 hours",
                                      "Call back within 1 hour, offer refund"),)
    assert result.errors == ()


OUTLOOK_HTML = """<html xmlns:o="urn:schemas-microsoft-com:office:office"><head>
<meta http-equiv=Content-Type content="text/html; charset=gb2312">
<style><!-- p.MsoNormal {margin:0cm;} --></style></head>
<body lang=ZH-CN><div class=WordSection1>
<p class=MsoNormal><span>项目名称：Q3新品推广项目<o:p></o:p></span></p>
<p class=MsoNormal><span>发起人/部门：市场部&nbsp;李娜<o:p></o:p></span></p>
<p class=MsoNormal><span>目标/背景：新品3个月内用户增长50%<o:p></o:p></span></p>
<p class=MsoNormal><span>任务分配：<o:p></o:p></span></p>
<table class=MsoTableGrid border=1 cellspacing=0 cellpadding=0>
<tr><td width=142><p class=MsoNormal><b><span>任务名称</span></b></p></td>
<td><p class=MsoNormal><b><span>负责人</span></b></p></td>
<td><p class=MsoNormal><b><span>截止日期</span></b></p></td>
<td><p class=MsoNormal><b><span>交付标准</span></b></p></td></tr>
<tr><td><p class=MsoNormal><span>新品核心卖点提炼<o:p></o:p></span></p></td>
<td><p class=MsoNormal><span>王喆</span></p></td><td><p class=MsoNormal>8月10日前</p></td>
<td><p class=MsoNormal><span>500字以内卖点说明+用户场景图</span></p></td></tr>
<tr><td><p class=MsoNormal>渠道推广方案</p></td><td><p class=MsoNormal>赵磊</p></td>
<td><p class=MsoNormal>8月15日前</p></td><td><p class=MsoNormal>包含预算、渠道选择、<br>投放节奏</p></td></tr>
<tr><td><p class=MsoNormal>客诉应对流程培训</p></td><td><p class=MsoNormal>陈静</p></td>
<td><p class=MsoNormal>8月20日前</p></td><td><p class=MsoNormal>FAQ文档+培训记录</p></td></tr>
</table><p class=MsoNormal>谢谢！</p></div></body></html>"""

# The seed guide's template 1 as a Word table: project cells merged down, deadline before owner.
SEED_RECORD_HTML = """<table>
<tr><th>项目名称</th><th>发起人/部门</th><th>参与人/部门</th><th>沟通事项</th><th>时间节点</th>
<th>负责人</th><th>完成状态(□未开始□进行中□已完成□延期)</th><th>备注/问题反馈</th></tr>
<tr><td rowspan=3>Q3新品推广项目</td><td rowspan=3>市场部 李娜</td><td rowspan=3>产品部、销售部、客服部</td>
<td>新品核心卖点提炼</td><td>8月10日前</td><td>王喆</td><td>□未开始</td><td>需结合用户调研数据</td></tr>
<tr><td>渠道推广方案制定</td><td>8月15日前</td><td>赵磊</td><td>□未开始</td><td>预算上限待财务部确认</td></tr>
<tr><td>客诉应对流程培训</td><td>8月20日前</td><td>陈静</td><td>□未开始</td><td>需产品部提供FAQ文档</td></tr>
</table>"""


def test_outlook_html_only(form_rules: FormRules) -> None:
    result = read_form("[项目] Q3新品推广项目", "", form_rules, html=OUTLOOK_HTML)
    assert result == FormResult(ItemKind.PROJECT, THREE_FIELDS, Q3_TASKS, ())


def test_html_table_when_text_has_no_rows(form_rules: FormRules) -> None:
    text = "项目名称：Q3新品推广项目\n发起人/部门：市场部 李娜\n目标/背景：新品3个月内用户增长50%\n任务分配：\n"
    result = read_form("[项目] Q3", text, form_rules, html=OUTLOOK_HTML)
    assert result == FormResult(ItemKind.PROJECT, THREE_FIELDS, Q3_TASKS, ())


def test_html_flattened_into_text_is_replaced_by_the_table(form_rules: FormRules) -> None:
    text = ("项目名称：Q3新品推广项目\n发起人/部门：市场部 李娜\n目标/背景：新品3个月内用户增长50%\n"
            "任务分配：\n任务名称 负责人 截止日期 交付标准\n1. 新品核心卖点提炼 王喆 8月10日前\n")
    result = read_form("[项目] Q3", text, form_rules, html=OUTLOOK_HTML)
    assert result.tasks == Q3_TASKS and result.errors == ()


def test_text_rows_win_over_html(form_rules: FormRules) -> None:
    """Rows as complete as the HTML's stay; the HTML only answers a choice the text leaves open
    (here 完成状态, which the text table has no column for)."""
    result = read_form("[项目] Q3", PROJECT_ZH, form_rules, html=SEED_RECORD_HTML)
    assert [(t.name, t.owner, t.deadline, t.deliverable) for t in result.tasks] == [
        (t.name, t.owner, t.deadline, t.deliverable) for t in Q3_TASKS]
    assert [t.status for t in result.tasks] == ["not_started", "", "not_started"]


def test_seed_record_table_with_merged_cells(form_rules: FormRules) -> None:
    result = read_form("[项目] Q3新品推广项目", "", form_rules, html=SEED_RECORD_HTML)
    assert result.fields == {"title": "Q3新品推广项目", "initiator": "市场部 李娜",
                             "participants": "产品部、销售部、客服部"}
    assert result.tasks == (
        TaskDraft("新品核心卖点提炼", "王喆", "8月10日前", "", "需结合用户调研数据",
                  status="not_started"),
        TaskDraft("渠道推广方案制定", "赵磊", "8月15日前", "", "预算上限待财务部确认",
                  status="not_started"),
        TaskDraft("客诉应对流程培训", "陈静", "8月20日前", "", "需产品部提供FAQ文档",
                  status="not_started"),
    )
    assert result.errors == ()  # the guide's template 1 has no 目标/背景: none is asked for


def test_two_column_html_form(form_rules: FormRules) -> None:
    html = ("<table><tr><td>任务名称</td><td>月度客户满意度报告</td></tr>"
            "<tr><td>负责人</td><td>数据部 刘洋</td></tr><tr><td>截止日期</td><td>7月30日</td></tr>"
            "<tr><td>交付标准</td><td>报告PDF</td></tr><tr><td>优先级</td><td>☑高 □中 □低</td></tr></table>")
    result = read_form("[任务] 月度报告", "", form_rules, html=html)
    assert result == FormResult(
        ItemKind.TASK,
        {"title": "月度客户满意度报告", "owner": "数据部 刘洋", "deadline": "7月30日",
         "deliverable": "报告PDF", "priority": "high"},
        (TaskDraft("月度客户满意度报告", "数据部 刘洋", "7月30日", "报告PDF", priority="high"),), ())


MALFORMED = ("项目名称：Q3\n发起人：李娜\n目标：增长\n任务分配：\n"
             "新品核心卖点提炼 | 王喆 | 8月10日前 | 500字以内卖点说明+用户场景图\n"
             "客诉应对流程培训 | 陈静\n"
             "渠道推广方案 赵磊 8月15日前\n")

ERRORS = [
    ("project missing tasks", "[项目] Q3", "项目名称：Q3新品推广项目\n\n谢谢\n",
     (FieldError("tasks", "no_tasks"),)),
    ("project missing its title", "[项目]", "任务分配：\n新品核心卖点提炼 | 王喆 | 8月10日前\n",
     (FieldError("title", "missing"),)),
    ("project tasks label but no rows", "[项目] Q3",
     "项目名称：Q3\n发起人：李娜\n目标：增长\n任务分配：\n请见附件。\n", (FieldError("tasks", "no_tasks"),)),
    ("project tasks written inline", "[项目] Q3",
     "项目名称：Q3\n发起人：李娜\n目标：增长\n任务：王喆负责卖点提炼\n",
     (FieldError("tasks", "no_tasks", "王喆负责卖点提炼"),)),
    ("malformed rows", "[项目] Q3", MALFORMED,
     (FieldError("tasks", "task_malformed", "客诉应对流程培训 | 陈静", 2),
      FieldError("tasks", "task_malformed", "渠道推广方案 赵磊 8月15日前", 3))),
    ("numbered row without separators", "[项目] Q3",
     "项目名称：Q3\n发起人：李娜\n目标：增长\n任务：\n1. 新品核心卖点提炼 王喆 8月10日前\n",
     (FieldError("tasks", "task_malformed", "1. 新品核心卖点提炼 王喆 8月10日前", 1),)),
    ("header row then an empty owner cell", "[项目] Q3",
     "项目名称：Q3\n发起人：李娜\n目标：增长\n任务分配：\n任务名称\t负责人\t截止日期\n渠道推广方案\t\t8月15日前\n",
     (FieldError("tasks", "task_malformed", "渠道推广方案\t\t8月15日前", 1),)),
    ("task missing owner and deadline", "[任务] 报告", "任务名称：月度客户满意度报告\n交付标准：报告\n",
     (FieldError("owner", "missing"), FieldError("deadline", "missing"))),
    ("emergency missing everything but type", "[紧急] 故障", "紧急事务类型：系统故障\n",
     (FieldError("responder", "missing"), FieldError("eta", "missing"))),
    ("emergency without a subject or description", "[紧急]", "响应人：王喆\n预计完成时间：今天18点\n",
     (FieldError("title", "missing"),)),
]


@pytest.mark.parametrize(("subject", "body", "errors"), [c[1:] for c in ERRORS],
                         ids=[c[0] for c in ERRORS])
def test_errors(form_rules: FormRules, subject: str, body: str,
                errors: tuple[FieldError, ...]) -> None:
    assert read_form(subject, body, form_rules).errors == errors


def test_malformed_rows_keep_valid_ones(form_rules: FormRules) -> None:
    assert read_form("[项目] Q3", MALFORMED, form_rules).tasks == (Q3_TASKS[0],)


LABELS = [
    ("full-width colon, spaces", "项目名称 ：  Q3新品推广项目", "title", "Q3新品推广项目"),
    ("ascii colon", "项目名称:Q3新品推广项目", "title", "Q3新品推广项目"),
    ("numbered", "1. 项目名称：Q3", "title", "Q3"),
    ("chinese numbered", "一、项目名称：Q3", "title", "Q3"),
    ("bullet", "• Initiator / Dept: Marketing", "initiator", "Marketing"),
    ("bracket label", "【目标】新品增长50%", "goal", "新品增长50%"),
    ("bold markdown", "**Goal:** grow 50%", "goal", "grow 50%"),
    ("case-insensitive", "DEADLINE: Aug 10", "deadline", "Aug 10"),
    ("hint in parentheses", "事务描述（含影响范围）：下单失败", "description", "下单失败"),
    ("traditional", "負責人：王喆", "owner", "王喆"),
    ("traditional deadline", "截止時間：8月10日", "deadline", "8月10日"),
    ("whole label with slash", "发起人 / 部门：市场部", "initiator", "市场部"),
    ("full-width digits kept raw", "截止日期：８月１０日", "deadline", "８月１０日"),
]


@pytest.mark.parametrize(("line", "key", "value"), [c[1:] for c in LABELS],
                         ids=[c[0] for c in LABELS])
def test_label_lines(form_rules: FormRules, line: str, key: str, value: str) -> None:
    assert read_form("", line + "\n", form_rules).fields == {key: value}


def test_unknown_labels_are_prose(form_rules: FormRules) -> None:
    body = "会议时间: 15:00\nPS: see https://example.com\n"
    assert read_form("", body, form_rules).fields == {}


def test_first_label_wins_and_blank_line_ends_a_value(form_rules: FormRules) -> None:
    body = "备注：第一行\n第二行\n\n第三段不属于备注\n备注：再写一次\n"
    assert read_form("", body, form_rules).fields == {"note": "第一行\n第二行"}


PRIORITIES = [("高", "high"), ("High", "high"), ("中", "medium"), ("normal", "medium"),
              ("低", "low"), ("□高 ☑中 □低", "medium"), ("[x] Low", "low"),
              ("看情况", "看情况")]


@pytest.mark.parametrize(("raw", "value"), PRIORITIES, ids=[p[0] for p in PRIORITIES])
def test_priority_normalised(form_rules: FormRules, raw: str, value: str) -> None:
    assert read_form("", f"优先级：{raw}\n", form_rules).fields["priority"] == value


EMERGENCY_TYPES = [("客诉", "customer_complaint"), ("客訴", "customer_complaint"),
                   ("系统故障", "system_outage"), ("System outage", "system_outage"),
                   ("舆情", "public_opinion"), ("輿情", "public_opinion"), ("其他", "other"),
                   ("Other", "other")]


@pytest.mark.parametrize(("raw", "value"), EMERGENCY_TYPES, ids=[p[0] for p in EMERGENCY_TYPES])
def test_emergency_type_normalised(form_rules: FormRules, raw: str, value: str) -> None:
    assert read_form("", f"紧急事务类型：{raw}\n", form_rules).fields["emergency_type"] == value


KINDS = [
    ("marker project", "[项目] Q3", {}, ItemKind.PROJECT),
    ("full-width bracket", "【项目】Q3", {}, ItemKind.PROJECT),
    ("english marker any case", "Re: [PROJECT] Q3", {}, ItemKind.PROJECT),
    ("traditional task marker", "[任務] 報告", {}, ItemKind.TASK),
    ("urgent", "[Urgent] outage", {}, ItemKind.EMERGENCY),
    ("full-width square brackets", "［紧急］故障", {}, ItemKind.EMERGENCY),
    ("first marker wins", "[紧急][任务] 故障", {}, ItemKind.EMERGENCY),
    ("marker beats fields", "[任务] x", {"responder": "王喆"}, ItemKind.TASK),
    ("responder", "x", {"responder": "王喆"}, ItemKind.EMERGENCY),
    ("emergency type", "x", {"emergency_type": "other"}, ItemKind.EMERGENCY),
    ("participants", "x", {"participants": "产品部"}, ItemKind.PROJECT),
    ("tasks", "x", {"tasks": ""}, ItemKind.PROJECT),
    ("owner and deadline", "x", {"owner": "王喆", "deadline": "周五"}, ItemKind.TASK),
    ("owner alone", "x", {"owner": "王喆"}, None),
    ("word project without brackets", "project update", {}, None),
]


@pytest.mark.parametrize(("subject", "fields", "kind"), [c[1:] for c in KINDS],
                         ids=[c[0] for c in KINDS])
def test_detect_kind(form_rules: FormRules, subject: str, fields: dict[str, str],
                     kind: ItemKind | None) -> None:
    assert detect_kind(subject, fields, form_rules) is kind


def test_plain_mail_is_no_form(form_rules: FormRules) -> None:
    body = "Hi team,\n\nLunch at noon?  The usual place.\n\nBest,\nAlex\n"
    assert read_form("lunch", body, form_rules) == FormResult(None, {}, (), ())


def test_signature_after_the_table_is_not_a_row(form_rules: FormRules) -> None:
    body = PROJECT_ALIGNED + "\n李娜    市场部经理\n电话  010-12345678\n"
    assert read_form("[项目] Q3", body, form_rules).errors == ()


def test_blank_form_zh_task(form_rules: FormRules) -> None:
    """Template 2 with exactly the guide's fields, its boxes as the guide prints them."""
    assert blank_form(ItemKind.TASK, "zh", form_rules) == (
        "日常任务同步跟进表\n\n任务名称：\n发起人：\n负责人：\n优先级（□高□中□低）：\n截止日期：\n"
        "当前进度（□0%□25%□50%□75%□100%）：\n完成情况简述：\n反馈时间：\n")


def test_blank_form_zh_project(form_rules: FormRules) -> None:
    """Template 1: its item-level columns as lines, then its task columns in the guide's order."""
    assert blank_form(ItemKind.PROJECT, "zh", form_rules) == (
        "跨部门项目协作沟通记录表\n\n项目名称：\n发起人/部门：\n参与人/部门：\n任务分配：\n"
        "沟通事项 | 时间节点 | 负责人 | 完成状态（□未开始□进行中□已完成□延期） | 备注/问题反馈\n")


def test_blank_form_zh_emergency(form_rules: FormRules) -> None:
    assert blank_form(ItemKind.EMERGENCY, "zh", form_rules) == (
        "紧急事务处理快速响应表\n\n紧急事务类型（□客诉□系统故障□舆情□其他）：\n发起人：\n"
        # One test per blank form, alike on purpose (duplicates): each states the guide's text in full.
        "事务描述（含影响范围）：\n响应人：\n处理方案（含步骤、责任人、时间）：\n预计完成时间：\n")


def test_blank_form_en_project(form_rules: FormRules) -> None:
    assert blank_form(ItemKind.PROJECT, "en", form_rules) == (
        "Cross-department project record\n\nProject name:\nInitiator/Dept:\n"
        "Participants/Depts:\nTasks:\n"
        "Matter | Deadline | Owner | Status (not started/in progress/done/delayed) | Notes/Issues\n")


@pytest.mark.parametrize("kind", list(ItemKind), ids=[k.value for k in ItemKind])
@pytest.mark.parametrize("language", ["zh", "en"])
def test_blank_form_read_back_lists_every_required_field(form_rules: FormRules, kind: ItemKind,
                                                         language: str) -> None:
    result = read_form(f"[{kind.value}]", blank_form(kind, language, form_rules), form_rules)
    required = form_rules.templates[kind].required
    assert result.kind is kind and result.fields == {}
    assert {e.field for e in result.errors} == set(required)


def test_refill_puts_values_back_and_malformed_rows_in_place(form_rules: FormRules) -> None:
    result = read_form("[项目] Q3", MALFORMED, form_rules)
    assert refill_form(result, "zh", form_rules) == (
        "跨部门项目协作沟通记录表\n\n项目名称：Q3\n发起人/部门：李娜\n参与人/部门：\n目标/背景：增长\n"
        "任务分配：\n沟通事项 | 时间节点 | 负责人 | 完成状态（□未开始□进行中□已完成□延期） | 备注/问题反馈"
        " | 交付标准\n新品核心卖点提炼 | 8月10日前 | 王喆 |  |  | 500字以内卖点说明+用户场景图\n"
        "客诉应对流程培训 | 陈静\n渠道推广方案 赵磊 8月15日前\n")


def test_refill_en_shows_choice_names(form_rules: FormRules) -> None:
    result = read_form("[Task] report", "Task: Report\nPriority: 高\n", form_rules)
    text = refill_form(result, "en", form_rules)
    assert "Priority (high/medium/low): High\n" in text
    assert "Task: Report\n" in text and "Owner:\n" in text


@pytest.mark.parametrize(("subject", "body"), [
    ("[项目] Q3", PROJECT_ZH), ("[Project] Q3", PROJECT_EN), ("[项目] Q3", PROJECT_EXCEL),
    ("[任务] 报告", TASK_ZH), ("[紧急] 故障", EMERGENCY_ZH)], ids=["zh", "en", "notes", "task", "urgent"])
def test_refill_round_trips(form_rules: FormRules, subject: str, body: str) -> None:
    first = read_form(subject, body, form_rules)
    for language in ("zh", "en"):
        again = read_form(subject, refill_form(first, language, form_rules), form_rules)
        assert again == first


def _rules_data() -> dict[str, Any]:
    with RULES_FILE.open("rb") as f:
        return tomllib.load(f)


def test_label_clash_is_refused() -> None:
    data = _rules_data()
    data["fields"]["goal"]["aliases"].append("负责人")
    with pytest.raises(ValueError, match="负责人"):
        load_form_rules(data)


def test_unknown_required_field_is_refused() -> None:
    data = _rules_data()
    data["templates"]["task"]["required"].append("budget")
    with pytest.raises(ValueError, match="budget"):
        load_form_rules(data)


def test_missing_template_is_refused() -> None:
    data = _rules_data()
    del data["templates"]["emergency"]
    with pytest.raises(ValueError, match="templates"):
        load_form_rules(data)


# --------------------------------------------------------------------------------------------
# The guide's own tables, in the shapes office workers produce them

GUIDE_T1_HEADER = ["项目名称", "发起人/部门", "参与人/部门", "沟通事项", "时间节点", "负责人",
                   "完成状态(□未开始□进行中□已完成□延期)", "备注/问题反馈"]
GUIDE_T1_VALUES = ["Q3新品推广项目", "市场部*经理", "产品部、销售部、客服部",
                   "新品核心卖点提炼", "8月10日前", "产品部*经理", "□未开始", "需结合用户调研数据",
                   "渠道推广方案", "8月15日前", "销售部*主管", "□未开始", "预算上限待财务部确认",
                   "客诉应对流程培训", "8月20日前", "客服部*专员", "□未开始", "需产品部提供FAQ文档"]
GUIDE_T1_TASKS = (
    TaskDraft("新品核心卖点提炼", "产品部*经理", "8月10日前", "", "需结合用户调研数据", "not_started"),
    TaskDraft("渠道推广方案", "销售部*主管", "8月15日前", "", "预算上限待财务部确认", "not_started"),
    TaskDraft("客诉应对流程培训", "客服部*专员", "8月20日前", "", "需产品部提供FAQ文档", "not_started"),
)
GUIDE_T1_FIELDS = {"title": "Q3新品推广项目", "initiator": "市场部*经理",
                   "participants": "产品部、销售部、客服部"}


def _excel(rows: list[list[str]]) -> str:
    return "\n".join("\t".join(r) for r in rows) + "\n"


T1_SHAPES = [
    ("as the guide prints it", "\n\n".join(GUIDE_T1_HEADER + GUIDE_T1_VALUES) + "\n"),
    ("word one cell per line", "\n".join(GUIDE_T1_HEADER + GUIDE_T1_VALUES) + "\n"),
    ("word copy then a signature", "\n".join(GUIDE_T1_HEADER + GUIDE_T1_VALUES)
     + "\n\n谢谢！\n李娜\n市场部"),
    ("excel paste, merged cells blank", _excel(
        [GUIDE_T1_HEADER, GUIDE_T1_VALUES[:8], ["", "", ""] + GUIDE_T1_VALUES[8:13],
         ["", "", ""] + GUIDE_T1_VALUES[13:]])),
]


@pytest.mark.parametrize("body", [c[1] for c in T1_SHAPES], ids=[c[0] for c in T1_SHAPES])
def test_template_1_in_every_shape(form_rules: FormRules, body: str) -> None:
    """Template 1 with exactly its columns: no 目标/背景 asked for, 沟通事项 are the tasks,
    时间节点 their deadlines, the merged item-level cells fill the item's fields once."""
    result = read_form("跨部门项目协作沟通记录表", body, form_rules)
    assert result == FormResult(ItemKind.PROJECT, GUIDE_T1_FIELDS, GUIDE_T1_TASKS, ())


def test_template_1_as_an_html_table_with_rowspan_and_a_bold_status(form_rules: FormRules) -> None:
    rows = "".join(
        "<tr>" + ("<td rowspan=3>Q3新品推广项目</td><td rowspan=3>市场部*经理</td>"
                  "<td rowspan=3>产品部、销售部、客服部</td>" if n == 0 else "")
        + f"<td>{name}</td><td>{due}</td><td>{owner}</td><td>{status}</td><td></td></tr>"
        for n, (name, due, owner, status) in enumerate([
            ("新品核心卖点提炼", "8月10日前", "产品部*经理", "□未开始□<b>进行中</b>□已完成□延期"),
            ("渠道推广方案", "8月15日前", "销售部*主管", '<span style="background:yellow">已完成</span>'
                                                 "/进行中"),
            ("客诉应对流程培训", "8月20日前", "客服部*专员", "□未开始")]))
    html = ("<table><tr>" + "".join(f"<td><b>{h}</b></td>" for h in GUIDE_T1_HEADER) + "</tr>"
            + rows + "</table>")
    result = read_form("[项目] Q3新品推广项目", "", form_rules, html=html)
    assert result.fields == GUIDE_T1_FIELDS
    assert [(t.name, t.owner, t.status) for t in result.tasks] == [
        ("新品核心卖点提炼", "产品部*经理", "in_progress"), ("渠道推广方案", "销售部*主管", "done"),
        ("客诉应对流程培训", "客服部*专员", "not_started")]


def test_template_2_rows_are_several_tasks_with_their_own_cells(form_rules: FormRules) -> None:
    header = ["任务名称", "发起人", "负责人", "优先级(□高□中□低)", "截止日期",
              "当前进度(□0%□25%□50%□75%□100%)", "完成情况简述", "反馈时间"]
    values = ["月度客户满意度报告", "运营部*专员", "数据部*分析师", "□高", "7月30日", "□75%",
              "数据收集已完成,待分析", "7月28日",
              "办公设备采购申请", "行政部*主管", "财务部*经理", "□中", "8月5日", "□50%", "预算审批中",
              "8月3日"]
    result = read_form("日常任务同步跟进表", "\n\n".join(header + values), form_rules)
    assert result.kind is ItemKind.TASK and result.errors == ()
    assert result.tasks == (
        TaskDraft("月度客户满意度报告", "数据部*分析师", "7月30日", "", "数据收集已完成,待分析",
                  progress="75%", priority="high", feedback="7月28日",
                  row={"initiator": "运营部*专员"}),
        TaskDraft("办公设备采购申请", "财务部*经理", "8月5日", "", "预算审批中", progress="50%",
                  priority="medium", feedback="8月3日", row={"initiator": "行政部*主管"}))


def test_template_3_two_row_table_and_label_value_cells(form_rules: FormRules) -> None:
    header = ["紧急事务类型(□客诉□系统故障□舆情□其他)", "发起人", "事务描述(含影响范围)", "响应人",
              "处理方案(含步骤、责任人、时间)", "预计完成时间"]
    values = ["☑系统故障", "客服部*专员", "支付接口超时，影响全部线上订单", "产品部*经理", "切换备用通道",
              "今天18点"]
    expected = FormResult(
        ItemKind.EMERGENCY,
        {"emergency_type": "system_outage", "initiator": "客服部*专员",
         "description": "支付接口超时，影响全部线上订单", "responder": "产品部*经理",
         "plan": "切换备用通道", "eta": "今天18点", "title": "支付系统故障"},
        (TaskDraft("支付系统故障", "产品部*经理", "今天18点", "切换备用通道"),), ())
    two_row = "\t".join(header) + "\n" + "\t".join(values) + "\n"
    label_value = "\n".join(f"{h}\n{v}" for h, v in zip(header, values, strict=True))
    assert read_form("紧急：支付系统故障", two_row, form_rules) == expected
    assert read_form("紧急：支付系统故障", label_value, form_rules) == expected


def test_status_split_into_tick_columns(form_rules: FormRules) -> None:
    html = ("<table><tr><td rowspan=2>沟通事项</td><td rowspan=2>时间节点</td><td rowspan=2>负责人</td>"
            "<td colspan=4>完成状态</td></tr><tr><td>未开始</td><td>进行中</td><td>已完成</td>"
            "<td>延期</td></tr><tr><td>卖点提炼</td><td>8月10日</td><td>王喆</td><td></td><td>√</td>"
            "<td></td><td></td></tr><tr><td>渠道方案</td><td>8月14日</td><td>赵磊</td><td></td><td>"
            "</td><td></td><td>√</td></tr></table>")
    result = read_form("[项目] Q3", "项目名称：Q3\n", form_rules, html=html)
    assert [(t.name, t.status) for t in result.tasks] == [("卖点提炼", "in_progress"),
                                                          ("渠道方案", "delayed")]


KIND_EVIDENCE = [
    ("the form's name in the subject", "日常任务同步跟进表", "负责人：王喆\n", ItemKind.TASK),
    ("紧急： opening the subject", "紧急：支付故障", "响应人：王喆\n", ItemKind.EMERGENCY),
    ("template 1's own labels", "Q3", "沟通事项\t时间节点\t负责人\n卖点\t8月10日\t王喆\n",
     ItemKind.PROJECT),
    ("template 2's own labels", "本周", "任务名称\t负责人\t优先级\t当前进度\n报告\t王喆\t高\t50%\n",
     ItemKind.TASK),
]


@pytest.mark.parametrize(("subject", "body", "kind"), [c[1:] for c in KIND_EVIDENCE],
                         ids=[c[0] for c in KIND_EVIDENCE])
def test_which_form_without_a_marker(form_rules: FormRules, subject: str, body: str,
                                     kind: ItemKind) -> None:
    assert read_form(subject, body, form_rules).kind is kind


def test_a_kickoff_without_rows_reads_its_clauses(form_rules: FormRules) -> None:
    body = ("事项：Q3新品推广项目启动会\n发起人：市场部*经理\n参与人：产品部总监、销售部主管、客服部*专员\n"
            "背景：新品计划8月上市\n需配合：产品部8月10日前输出核心卖点；销售部8月15日前提交渠道需求；设计部尽快出图\n")
    result = read_form("Q3新品推广项目启动会", body, form_rules)
    assert result.kind is ItemKind.PROJECT and result.source == "kickoff" and result.errors == ()
    assert result.tasks == (TaskDraft("输出核心卖点", "产品部", "8月10日前"),
                            TaskDraft("提交渠道需求", "销售部", "8月15日前"))
    assert result.unread == ("设计部尽快出图",)


def test_unknown_label_lines_are_listed_as_unread(form_rules: FormRules) -> None:
    result = read_form("[任务] 报告", "任务名称：报告\n负责人：王喆\n\n会议室: 3楼\n", form_rules)
    assert result.unread == ("会议室: 3楼",) and "会议室" not in result.fields.get("owner", "")
