// Side-by-side column widget (see methodcolumn.h).
#include "ui/methodcolumn.h"

#include <QLabel>
#include <QTextBrowser>
#include <QVBoxLayout>

#include "ui/overlayview.h"

namespace dlui {

MethodColumn::MethodColumn(const QString& title, const QString& method, QWidget* parent)
    : QFrame(parent), m_title(title), m_method(method) {
    setObjectName("column_" + method);
    setFrameShape(QFrame::StyledPanel);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    m_titleLabel = new QLabel("<b>" + title + "</b>", this);
    m_subtitle = new QLabel(this);
    m_subtitle->setStyleSheet("color: #666;");
    m_kept = new QLabel(this);
    m_kept->setObjectName("keptLabel");
    m_view = new OverlayView(this);
    m_view->setObjectName("overlay_" + method);
    m_answer = new QTextBrowser(this);
    m_answer->setObjectName("answer_" + method);
    m_answer->setMinimumHeight(80);
    m_figures = new QLabel(this);
    m_figures->setObjectName("figures_" + method);
    m_figures->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_figures->setWordWrap(true);
    auto* head = new QHBoxLayout;
    head->addWidget(m_titleLabel);
    head->addStretch(1);
    head->addWidget(m_kept);
    layout->addLayout(head);
    layout->addWidget(m_subtitle);
    layout->addWidget(m_view, 3);
    layout->addWidget(m_answer, 2);
    layout->addWidget(m_figures);
    setFigures(nullptr);
}

void MethodColumn::setSubtitle(const QString& text) { m_subtitle->setText(text); }
void MethodColumn::setKeptText(const QString& text) { m_kept->setText(text); }

void MethodColumn::setAnswerHtml(const QString& html, bool stale) {
    m_answer->setHtml(stale ? "<div style=\"color:#999999;\">" + html + "<p><i>(outdated: the parameters changed; "
                                  "press Run, Ctrl+R)</i></p></div>"
                            : html);
}

QString MethodColumn::answerPlainText() const { return m_answer->toPlainText(); }
QString MethodColumn::figuresText() const { return m_figures->text(); }

void MethodColumn::setFigures(const Figures* f) {
    if (!f) {
        m_figures->setText("<small>no run yet</small>");
        return;
    }
    auto ms = [](double v) { return QString::number(v, 'f', 1); };
    QString speed = f->speedup > 0 ? QString::number(f->speedup, 'f', 2) + QString::fromUtf8("×") : QString("–");
    m_figures->setText(QString("<small><table>"
                               "<tr><td>vision</td><td align=right>%1 ms</td><td>&nbsp;prefill</td><td align=right>%2 ms</td></tr>"
                               "<tr><td>decode</td><td align=right>%3 ms</td><td>&nbsp;TTFT</td><td align=right>%4 ms</td></tr>"
                               "<tr><td>total</td><td align=right><b>%5 ms</b></td><td>&nbsp;speedup</td><td align=right><b>%6</b></td></tr>"
                               "<tr><td>tokens kept</td><td align=right>%7 / %8</td><td>&nbsp;KV cache</td><td align=right>%9</td></tr>"
                               "</table></small>")
                           .arg(ms(f->vision_ms), ms(f->prefill_ms), ms(f->decode_ms), ms(f->ttft_ms), ms(f->total_ms), speed)
                           .arg(f->kept)
                           .arg(f->image_tokens)
                           .arg(format_bytes(f->kv_cache_bytes)));
}

}  // namespace dlui
