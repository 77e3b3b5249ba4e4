// Benchmark view (see benchmark_view.h).
#include "ui/benchmark_view.h"

#include <QChart>
#include <QChartView>
#include <QComboBox>
#include <QDir>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLegend>
#include <QLegendMarker>
#include <QLineSeries>
#include <QPushButton>
#include <QScatterSeries>
#include <QSplitter>
#include <QTableWidget>
#include <QValueAxis>
#include <QVBoxLayout>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "core/common.h"

namespace dlui {

namespace fs = std::filesystem;

EvalDirectory load_eval_directory(const std::string& dir) {
    EvalDirectory d;
    d.dir = dir;
    if (!fs::is_directory(dir)) throw dl::Error(dl::str_cat(dir, ": not a directory"));
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir)) {
        const std::string name = e.path().filename().string();
        if (name.rfind("samples_", 0) == 0 && e.path().extension() == ".jsonl") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) {
        std::ifstream in(f, std::ios::binary);
        std::string line;
        int lineno = 0;
        while (std::getline(in, line)) {
            ++lineno;
            if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
            d.samples.push_back(dl::eval_sample_from_json(line, dl::str_cat(f.string(), ":", lineno)));
        }
    }
    if (d.samples.empty()) throw dl::Error(dl::str_cat(dir, ": no samples_*.jsonl answers (not a dartlens-cli eval output?)"));
    d.task = d.samples.front().task;
    d.rows = dl::eval_metrics(d.samples);
    d.images_dir = dir;
    const fs::path results = fs::path(dir) / "results.json";
    std::ifstream rf(results, std::ios::binary);
    if (rf) {
        nlohmann::json j = nlohmann::json::parse(rf, nullptr, false);
        if (j.is_discarded() || !j.is_object()) throw dl::Error(dl::str_cat(results.string(), ": not a JSON object"));
        const nlohmann::json cfg = j.value("config", nlohmann::json::object());
        if (cfg.contains("images") && cfg["images"].is_string()) d.images_dir = cfg["images"].get<std::string>();
        else if (cfg.contains("questions") && cfg["questions"].is_string())
            d.images_dir = fs::path(cfg["questions"].get<std::string>()).parent_path().string();
    }
    return d;
}

namespace {

int method_rank(const std::string& m) {
    static const std::vector<std::string> order = {"none", "dart", "fastv", "random"};
    auto it = std::find(order.begin(), order.end(), m);
    return it == order.end() ? int(order.size()) : int(it - order.begin());
}

QColor method_color(const std::string& m) {
    if (m == "dart") return QColor(0x1f, 0x77, 0xb4);
    if (m == "fastv") return QColor(0xd6, 0x27, 0x28);
    if (m == "random") return QColor(0x7f, 0x7f, 0x7f);
    if (m == "none") return QColor(0x2c, 0xa0, 0x2c);
    return QColor(0x94, 0x67, 0xbd);
}

QTableWidgetItem* item(const QString& text) {
    auto* it = new QTableWidgetItem(text);
    it->setFlags(it->flags() & ~Qt::ItemIsEditable);
    return it;
}

}  // namespace

BenchmarkView::BenchmarkView(QWidget* parent) : QWidget(parent) {
    setWindowTitle("DartLens — evaluation results");
    auto* layout = new QVBoxLayout(this);
    auto* top = new QHBoxLayout;
    auto* open = new QPushButton("Open eval directory…");
    connect(open, &QPushButton::clicked, this, &BenchmarkView::openDialog);
    m_title = new QLabel("<i>no results: open the --out directory of dartlens-cli eval</i>");
    m_split = new QComboBox;
    m_split->setObjectName("split");
    m_metric = new QComboBox;
    m_metric->setObjectName("metric");
    top->addWidget(open);
    top->addWidget(m_title, 1);
    top->addWidget(new QLabel("Split"));
    top->addWidget(m_split);
    top->addWidget(new QLabel("Metric"));
    top->addWidget(m_metric);
    layout->addLayout(top);
    auto* split = new QSplitter(Qt::Vertical);
    m_chart = new QChartView;
    m_chart->setRenderHint(QPainter::Antialiasing);
    m_chart->setMinimumHeight(260);
    split->addWidget(m_chart);
    m_latency = new QTableWidget;
    m_latency->setObjectName("latency");
    split->addWidget(m_latency);
    m_questions = new QTableWidget;
    m_questions->setObjectName("questions");
    m_questions->setToolTip("Double-click a question to open its picture and question in the explorer");
    split->addWidget(m_questions);
    layout->addWidget(split, 1);
    connect(m_split, &QComboBox::currentTextChanged, this, [this] { rebuild(); });
    connect(m_metric, &QComboBox::currentTextChanged, this, [this] { rebuild(); });
    connect(m_questions, &QTableWidget::cellDoubleClicked, this, [this](int r, int) {
        const QTableWidgetItem* it = m_questions->item(r, 0);
        if (!it) return;
        emit openQuestion(it->data(Qt::UserRole).toString(), it->data(Qt::UserRole + 1).toString());
    });
    connect(m_latency, &QTableWidget::cellClicked, this, [this](int r, int) {
        const QTableWidgetItem* m = m_latency->item(r, 0);
        const QTableWidgetItem* b = m_latency->item(r, 1);
        if (m && b) selectPoint(m->text(), b->text().toInt());
    });
    resize(980, 760);
}

QString BenchmarkView::errorText() const { return m_error; }

void BenchmarkView::openDialog() {
    const QString dir = QFileDialog::getExistingDirectory(this, "Open a dartlens-cli eval --out directory");
    if (!dir.isEmpty()) openDirectory(dir);
}

bool BenchmarkView::openDirectory(const QString& dir) {
    try {
        m_data = load_eval_directory(dir.toStdString());
    } catch (const std::exception& e) {
        m_error = QString::fromUtf8(e.what());
        m_title->setText("<span style=\"color:#b00020;\">" + m_error.toHtmlEscaped() + "</span>");
        return false;
    }
    m_error.clear();
    m_title->setText(QString("<b>%1</b> — %2 answers, task %3")
                         .arg(QDir(dir).dirName().toHtmlEscaped())
                         .arg(m_data.samples.size())
                         .arg(QString::fromStdString(m_data.task)));
    std::set<std::string> splits;
    std::vector<std::string> metrics;
    for (const dl::EvalRow& r : m_data.rows) {
        splits.insert(r.split);
        for (const auto& [name, v] : r.metrics)
            if (std::find(metrics.begin(), metrics.end(), name) == metrics.end()) metrics.push_back(name);
    }
    QSignalBlocker b1(m_split), b2(m_metric);
    m_split->clear();
    if (splits.count("all")) m_split->addItem("all");
    for (const std::string& s : splits)
        if (s != "all") m_split->addItem(QString::fromStdString(s));
    m_metric->clear();
    for (const std::string& m : metrics) m_metric->addItem(QString::fromStdString(m));
    const int f1 = m_metric->findText("pope_f1_score");
    if (f1 >= 0) m_metric->setCurrentIndex(f1);
    rebuild();
    return true;
}

void BenchmarkView::setSplit(const QString& split) { m_split->setCurrentText(split); }
void BenchmarkView::setMetric(const QString& metric) { m_metric->setCurrentText(metric); }

const dl::EvalRow* BenchmarkView::row(const std::string& method, int budget) const {
    const std::string split = m_split->currentText().toStdString();
    for (const dl::EvalRow& r : m_data.rows)
        if (r.split == split && r.method == method && r.budget == budget) return &r;
    return nullptr;
}

QStringList BenchmarkView::methods() const {
    std::vector<std::string> ms;
    for (const dl::EvalRow& r : m_data.rows)
        if (std::find(ms.begin(), ms.end(), r.method) == ms.end()) ms.push_back(r.method);
    std::stable_sort(ms.begin(), ms.end(), [](const std::string& a, const std::string& b) { return method_rank(a) < method_rank(b); });
    QStringList out;
    for (const std::string& m : ms) out << QString::fromStdString(m);
    return out;
}

std::vector<std::pair<int, double>> BenchmarkView::points(const QString& method) const {
    std::vector<std::pair<int, double>> out;
    const std::string split = m_split->currentText().toStdString(), metric = m_metric->currentText().toStdString();
    for (const dl::EvalRow& r : m_data.rows) {
        if (r.split != split || r.method != method.toStdString()) continue;
        for (const auto& [name, v] : r.metrics)
            if (name == metric) out.push_back({r.budget, v});
    }
    std::sort(out.begin(), out.end());
    return out;
}

void BenchmarkView::rebuild() {
    auto* chart = new QChart;
    chart->setTitle(QString("%1 (%2) vs kept image tokens").arg(m_metric->currentText(), m_split->currentText()));
    auto* ax = new QValueAxis;
    ax->setTitleText("kept image tokens");
    ax->setLabelFormat("%d");
    auto* ay = new QValueAxis;
    ay->setTitleText(m_metric->currentText());
    chart->addAxis(ax, Qt::AlignBottom);
    chart->addAxis(ay, Qt::AlignLeft);
    int xmin = 1 << 30, xmax = 0;
    double ymin = 1, ymax = 0;
    for (const QString& m : methods())
        for (const auto& [b, v] : points(m)) {
            if (m != "none") xmin = std::min(xmin, b), xmax = std::max(xmax, b);
            ymin = std::min(ymin, v), ymax = std::max(ymax, v);
        }
    if (xmax == 0) xmin = 0, xmax = 1;
    const int pad = std::max(1, (xmax - xmin) / 10);
    ax->setRange(std::max(0, xmin - pad), xmax + pad);
    ay->setRange(std::max(0.0, ymin - 0.05), std::min(1.0, ymax + 0.05));
    for (const QString& m : methods()) {
        const auto pts = points(m);
        if (pts.empty()) continue;
        const QColor c = method_color(m.toStdString());
        auto* line = new QLineSeries;
        line->setName(m == "none" ? QString("none (all %1 tokens)").arg(pts.front().first) : m);
        QPen pen(c, 2);
        if (m == "none") {
            pen.setStyle(Qt::DashLine);
            line->append(ax->min(), pts.front().second);
            line->append(ax->max(), pts.front().second);
        } else {
            for (const auto& [b, v] : pts) line->append(b, v);
        }
        line->setPen(pen);
        chart->addSeries(line);
        line->attachAxis(ax);
        line->attachAxis(ay);
        if (m == "none") continue;
        auto* dots = new QScatterSeries;
        dots->setColor(c);
        dots->setMarkerSize(9);
        for (const auto& [b, v] : pts) dots->append(b, v);
        chart->addSeries(dots);
        dots->attachAxis(ax);
        dots->attachAxis(ay);
        chart->legend()->markers(dots).value(0)->setVisible(false);
        connect(dots, &QScatterSeries::clicked, this, [this, m](const QPointF& p) { selectPoint(m, int(std::lround(p.x()))); });
    }
    QChart* old = m_chart->chart();
    m_chart->setChart(chart);
    delete old;

    // latency and metric per method / budget
    const QStringList header = {"method", "budget", "n", m_metric->currentText(), "mean kept", "prefill ms", "decode ms", "total ms"};
    m_latency->clear();
    m_latency->setColumnCount(header.size());
    m_latency->setHorizontalHeaderLabels(header);
    std::vector<const dl::EvalRow*> rows;
    for (const dl::EvalRow& r : m_data.rows)
        if (r.split == m_split->currentText().toStdString()) rows.push_back(&r);
    m_latency->setRowCount(int(rows.size()));
    for (int i = 0; i < int(rows.size()); ++i) {
        const dl::EvalRow& r = *rows[size_t(i)];
        double v = -1;
        for (const auto& [name, x] : r.metrics)
            if (name == m_metric->currentText().toStdString()) v = x;
        m_latency->setItem(i, 0, item(QString::fromStdString(r.method)));
        m_latency->setItem(i, 1, item(QString::number(r.budget)));
        m_latency->setItem(i, 2, item(QString::number(r.n)));
        m_latency->setItem(i, 3, item(v < 0 ? "—" : QString::number(v, 'f', 3)));
        m_latency->setItem(i, 4, item(QString::number(r.mean_kept_count, 'f', 1)));
        m_latency->setItem(i, 5, item(QString::number(r.mean_prefill_ms, 'f', 1)));
        m_latency->setItem(i, 6, item(QString::number(r.mean_decode_ms, 'f', 1)));
        m_latency->setItem(i, 7, item(QString::number(r.mean_total_ms, 'f', 1)));
    }
    m_latency->resizeColumnsToContents();
}

void BenchmarkView::selectPoint(const QString& method, int budget) {
    const std::string split = m_split->currentText().toStdString();
    // the questions of this method and budget, with every method's answer at this budget (the
    // unpruned answer whatever its budget)
    std::vector<const dl::EvalSample*> chosen;
    std::map<std::string, std::map<int, const dl::EvalSample*>> by_method;  // method -> index -> sample
    int none_budget = -1;
    for (const dl::EvalSample& s : m_data.samples) {
        if (s.method == "none") none_budget = s.budget;
        if (s.method == "none" || s.budget == budget) by_method[s.method][s.index] = &s;
        if (s.method == method.toStdString() && s.budget == budget && (split == "all" || s.split == split))
            chosen.push_back(&s);
    }
    std::sort(chosen.begin(), chosen.end(), [](const dl::EvalSample* a, const dl::EvalSample* b) { return a->index < b->index; });
    QStringList header = {"question", "truth"};
    QStringList cols;
    for (const QString& m : methods()) cols << m;
    for (const QString& m : cols) header << (m == "none" ? QString("none (%1)").arg(none_budget) : QString("%1 @ %2").arg(m).arg(budget));
    m_questions->clear();
    m_questions->setColumnCount(header.size());
    m_questions->setHorizontalHeaderLabels(header);
    m_questions->setRowCount(int(chosen.size()));
    for (int i = 0; i < int(chosen.size()); ++i) {
        const dl::EvalSample& s = *chosen[size_t(i)];
        auto* q = item(QString::fromStdString(s.image + ": " + s.question));
        q->setData(Qt::UserRole, QDir(QString::fromStdString(m_data.images_dir)).filePath(QString::fromStdString(s.image)));
        q->setData(Qt::UserRole + 1, QString::fromStdString(s.question));
        m_questions->setItem(i, 0, q);
        m_questions->setItem(i, 1, item(QString::fromStdString(s.reference.empty() ? s.label : s.reference)));
        for (int c = 0; c < int(cols.size()); ++c) {
            const auto& idx = by_method[cols[c].toStdString()];
            auto it = idx.find(s.index);
            m_questions->setItem(i, 2 + c, item(it == idx.end() ? QString("—") : QString::fromStdString(it->second->answer)));
        }
    }
    m_questions->resizeColumnsToContents();
}

}  // namespace dlui
