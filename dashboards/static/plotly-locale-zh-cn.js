// plotly.js's zh-CN locale: month and day names, and date formats of Chinese axes, so a zh
// page shows no English month name. Appended to plotly.js in the one hashed bundle.
"use strict";
Plotly.register({
  moduleType: "locale",
  name: "zh-CN",
  dictionary: {
    "Autoscale": "自动缩放",
    "Reset axes": "重置轴",
    "Zoom": "缩放",
    "Pan": "平移",
    "Zoom in": "放大",
    "Zoom out": "缩小",
    "Download plot as a png": "下载图表为 PNG 格式",
    "Double-click to zoom back out": "双击返回缩小显示",
    "Click to enter Colorscale title": "点击输入色阶的标题",
    "Click to enter Plot title": "点击输入图表的标题",
    "Click to enter X axis title": "点击输入 X 轴的标题",
    "Click to enter Y axis title": "点击输入 Y 轴的标题",
    "Show closest data on hover": "悬停时显示最近的数据",
    "Compare data on hover": "悬停时比较数据",
  },
  format: {
    days: ["星期日", "星期一", "星期二", "星期三", "星期四", "星期五", "星期六"],
    shortDays: ["周日", "周一", "周二", "周三", "周四", "周五", "周六"],
    months: ["一月", "二月", "三月", "四月", "五月", "六月", "七月", "八月", "九月", "十月", "十一月", "十二月"],
    shortMonths: ["1月", "2月", "3月", "4月", "5月", "6月", "7月", "8月", "9月", "10月", "11月", "12月"],
    periods: ["上午", "下午"],
    date: "%Y-%m-%d",
    year: "%Y年",
    month: "%Y年%-m月",
    dayMonth: "%-m月%-d日",
    dayMonthYear: "%Y年%-m月%-d日",
  },
});
