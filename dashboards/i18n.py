"""Every label the dashboards show, in English and Simplified Chinese: the one catalogue.

Figures take their labels from `Labels(lang)`; the HTML shells receive the same catalogue
as a script (`catalogue_js`), so a label is written once, here, in both languages.
"""

from __future__ import annotations

import json
from enum import StrEnum


class Lang(StrEnum):
    EN = "en"
    ZH_CN = "zh-CN"


DEFAULT_LANG = Lang.EN

# key -> (English, 简体中文)
CATALOGUE: dict[str, tuple[str, str]] = {
    "app": ("glucobridge", "glucobridge 血糖桥"),
    "sign_in": ("Sign in", "登录"),
    "sign_out": ("Sign out", "退出"),
    "email": ("E-mail", "电子邮箱"),
    "password": ("Password", "密码"),
    "language": ("Language", "语言"),
    "unit": ("Unit", "单位"),
    "sign_in_failed": ("Wrong e-mail or password", "邮箱或密码错误"),
    "no_access": (
        "No such patient, or you have no access to their data.",
        "没有该患者，或您无权查看其数据。",
    ),
    "loading": ("Loading…", "加载中…"),
    "patient_page": ("My glucose", "我的血糖"),
    "nutrition_page": ("Meals and glucose", "餐食与血糖"),
    "clinician_page": ("Patients needing attention", "需要关注的患者"),
    "report_page": ("Pre-visit report", "就诊前报告"),
    "today": ("Today's readings", "今日读数"),
    "latest_day": ("Latest day with readings", "最近有读数的一天"),
    "mean_glucose": ("Mean glucose", "平均血糖"),
    "below_70": ("Readings below range", "低于范围的读数"),
    "all_patients": ("My patients", "我的患者"),
    "role": ("Role", "角色"),
    "agp": ("Ambulatory glucose profile (last 14 days)", "动态血糖图谱（最近14天）"),
    "time_of_day": ("Time of day", "时间"),
    "glucose": ("Glucose", "血糖"),
    "median": ("Median", "中位数"),
    "iqr": ("25–75 %", "25–75 %"),
    "p5_95": ("5–95 %", "5–95 %"),
    "target_range": ("Target range", "目标范围"),
    "time_in_ranges": ("Time in ranges", "各范围内时间"),
    "very_low": ("Very low", "极低"),
    "low": ("Low", "低"),
    "in_range": ("In range", "目标范围内"),
    "high": ("High", "高"),
    "very_high": ("Very high", "极高"),
    "goal": ("goal", "目标"),
    "daily": ("Daily summaries", "每日小结"),
    "date": ("Date", "日期"),
    "readings": ("Readings", "读数"),
    "mean": ("Mean", "平均值"),
    "min": ("Min", "最低"),
    "max": ("Max", "最高"),
    "logbook": ("Logbook", "记录本"),
    "time": ("Time", "时间"),
    "meal": ("Meal", "餐时"),
    "carbs": ("Carbs (g)", "碳水（克）"),
    "alerts": ("Alerts", "警报"),
    "no_alerts": ("No alerts", "没有警报"),
    "before_meal": ("Before meal", "餐前"),
    "after_meal": ("After meal", "餐后"),
    "fasting": ("Fasting", "空腹"),
    "casual": ("Any time", "随机"),
    "bedtime": ("Bedtime", "睡前"),
    "breakfast": ("Breakfast", "早餐"),
    "lunch": ("Lunch", "午餐"),
    "dinner": ("Dinner", "晚餐"),
    "snack": ("Other", "其他"),
    "meal_pairs": ("Readings around meals", "餐前餐后配对读数"),
    "meal_type": ("Meal type", "餐次"),
    "before": ("Before", "餐前"),
    "after": ("After", "餐后"),
    "rise": ("Rise", "升幅"),
    "post_meal_rise": ("Post-meal rise by meal type", "各餐次餐后血糖升幅"),
    "days_compared": ("Days compared: before and after meals", "逐日比较：餐前与餐后"),
    "patient": ("Patient", "患者"),
    "attention": ("Needs attention because", "关注原因"),
    "tbr": ("Time below range", "低于范围时间"),
    "level2": ("Level 2 lows", "2级低血糖"),
    "missing": ("Missing data", "数据缺失"),
    "gmi_rising": ("GMI rising", "GMI上升"),
    "last_reading": ("Last reading", "最近读数"),
    "nothing": ("nothing flagged", "无异常"),
    "open": ("Open", "打开"),
    "gmi": ("GMI", "血糖管理指标 GMI"),
    "cv": ("CV", "变异系数 CV"),
    "readings_per_day": ("Readings per day", "每日读数"),
    "days_with_data": ("Days with ≥{n} readings", "读数≥{n}次的天数"),
    "hypo_events": ("Hypoglycaemia (level 1 / level 2)", "低血糖（1级/2级）"),
    "sufficiency": ("Data sufficiency", "数据充分性"),
    "change": ("Change since previous period", "与上一周期相比"),
    "metric": ("Metric", "指标"),
    "this_period": ("This period", "本周期"),
    "previous_period": ("Previous period", "上一周期"),
    "difference": ("Difference", "差值"),
    "period": ("Period", "周期"),
    "print": ("Print", "打印"),
    "no_data": ("No readings in this period", "本周期没有读数"),
    "source": ("Source", "数据来源"),
    "source_cgm": ("CGM", "动态血糖仪 CGM"),
    "source_meter": ("Meter (share of readings)", "血糖仪（读数占比）"),
    "tir": ("Time in range", "目标范围内时间"),
    "tar": ("Time above range", "高于范围时间"),
    "tar_high": ("High", "高"),
    "tar_very_high": ("Very high", "极高"),
    "tbr_short": ("Below range", "低于范围"),
    "days_since_sync": ("Days since last sync", "距上次同步天数"),
    "last_sync": ("Last sync (patient's time)", "上次同步（患者当地时间）"),
    "flagged_only": ("Flagged only", "仅显示需关注者"),
    "clinic": ("Clinic", "诊所"),
    "all_clinics": ("All clinics", "全部诊所"),
    "page_of": (
        "Page {page} of {pages} · {total} patients",
        "第 {page}/{pages} 页 · 共 {total} 位患者",
    ),
    "not_ranked": (
        "· {n} more patients not ranked: filter by clinic to see them",
        "· 另有 {n} 位患者未排序：请按诊所筛选查看",
    ),
    "previous_page": ("Previous", "上一页"),
    "next_page": ("Next", "下一页"),
    "risk_order": (
        "Order: lows first (level-2 lows, time below range), then very high, then time in"
        " range; red cells miss a consensus goal.",
        "排序：先低血糖（2级低血糖、低于范围时间），再极高，再目标范围内时间；红色单元格未达共识目标。",
    ),
    "pages_links": ("Pages", "页面"),
    "patient_glucose": ("Patient's glucose", "患者血糖"),
    "signed_in_as": ("Signed in as", "当前登录"),
    "role_patient": ("patient", "患者"),
    "role_caregiver": ("caregiver", "照护者"),
    "role_nutritionist": ("nutritionist", "营养师"),
    "role_clinician": ("clinician", "医生"),
    "role_clinic_admin": ("clinic admin", "诊所管理员"),
    "role_admin": ("admin", "管理员"),
    "offline": (
        "No connection to the server. Check the network and reload the page.",
        "无法连接服务器。请检查网络后刷新页面。",
    ),
    "unavailable": (
        "The service is unavailable for a moment (503). Please try again in a minute.",
        "服务暂时不可用（503）。请稍后再试。",
    ),
    "server_error": (
        "The server failed to answer this request; nothing is wrong with your access.",
        "服务器处理请求时出错；这与您的访问权限无关。",
    ),
    "session_expired": (
        "Your session has ended. Please sign in again.",
        "您的会话已结束，请重新登录。",
    ),
    "days": ("Days", "天数"),
    "time_active": ("% time CGM active", "CGM 佩戴时间占比"),
    "agp_left_out": (
        "No AGP and no GMI: {met} of {days} days have ≥{n} readings; both need {share} % of"
        " {required} days (core's sufficiency rule). Readings are reported as readings.",
        "未显示 AGP 和 GMI：{days} 天中仅 {met} 天读数≥{n} 次；二者需要 {required} 天中 {share} %"
        " 的天数达到该要求。以下按读数报告。",
    ),
    "daily_profiles": ("Daily glucose profiles", "每日血糖曲线"),
    "unpaired_after": ("after-meal readings without a pair", "无配对的餐后读数"),
    "identifier": ("ID", "编号"),
    "printed": ("Printed", "打印日期"),
    "meter_report": ("Fingerstick readings by meal", "按餐时的指尖血读数"),
    "stats": ("Glucose statistics and targets", "血糖统计与目标"),
    "target": ("Target", "目标"),
    "mean_rise": ("Mean rise", "平均升幅"),
    "in_target": ("In target", "达标"),
    "daily_log": ("Daily log", "每日记录"),
    "of_readings": ("share of readings", "读数占比"),
    "after_meal_target": ("After-meal target (ADA)", "餐后目标（ADA）"),
    "unpaired_note": (
        "Rows without a before value: after-meal readings with no reading before the meal.",
        "无餐前值的行：餐前未测的餐后读数。",
    ),
    "alerts_unavailable": ("Alerts could not be loaded", "无法加载警报"),
}


class Labels:
    """Labels of one language; a missing key is a bug and raises KeyError."""

    def __init__(self, lang: Lang) -> None:
        self.lang = lang
        self._index = 0 if lang is Lang.EN else 1

    def __getitem__(self, key: str) -> str:
        return CATALOGUE[key][self._index]

    def as_dict(self) -> dict[str, str]:
        return {key: texts[self._index] for key, texts in CATALOGUE.items()}


def catalogue_js() -> str:
    """The catalogue as a script for the HTML shells: `window.GB_LABELS[lang][key]`."""
    table = {lang.value: Labels(lang).as_dict() for lang in Lang}
    return "window.GB_LABELS = " + json.dumps(table, ensure_ascii=False) + ";\n"
